"""Request bodies of the custom event types API (``POST``/``PATCH /api/v1/event-types``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.schemas.event_bodies import custom_type_name
from service.schemas.inputs import NO_NUL, JsonObject

MAX_DESCRIPTION_CHARS = 1000

Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS), NO_NUL]

_SCHEMA_DESCRIPTION = (
    "A JSON Schema (draft 2020-12, a JSON object of at most 64 KiB) that every event's `data` must "
    "satisfy. `$ref` may only point inside the schema."
)


class CustomTypeCreate(BaseModel):
    """A new custom event type."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, AfterValidator(custom_type_name)] = Field(
        description="3-100 characters of `[a-z0-9:._-]`; not `ping`, nor starting with "
        "`project:`, `jupyter:` or `herald:`.",
        examples=["order.placed"],
    )
    description: Description = ""
    schema_: JsonObject = Field(alias="schema", description=_SCHEMA_DESCRIPTION)


class CustomTypeUpdate(BaseModel):
    """What a PATCH changes (a field left out, or null, stays as it is); later events only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: Description | None = None
    schema_: JsonObject | None = Field(default=None, alias="schema", description=_SCHEMA_DESCRIPTION)
