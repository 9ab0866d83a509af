"""Strict validation of ingested events (API.md, "Events" and "Precise rules / Ingest").

``validate_event`` is the authority: it takes any parsed JSON value and returns either a
``ValidatedEvent`` or the list of every problem found, shaped like FastAPI's 422 errors.
``EventIn`` only documents the body in the OpenAPI schema. The sections themselves are in
``service/schemas/event_sections.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from service.catalog import CATALOG, PING
from service.schemas.event_sections import (
    SECTION_NAMES,
    SECTIONS_BY_KIND,
    TOP_LEVEL_KEYS,
    CronPipelineRunSection,
    EnvironmentSection,
    ImageBuildSection,
    JobSectionDoc,
    PipelineSection,
    ProjectSection,
    RunSection,
    SessionSection,
    Timestamp,
    UpdateSection,
)

# Nesting limit of a body. pydantic and orjson cannot serialize JSON nested deeper than
# ~255 levels, and payloads nest a body's values a few levels further down.
MAX_JSON_DEPTH = 128
MAX_REPORTED_ERRORS = 100  # of unstorable values: one bad body must not produce a huge 422

_T = TypeVar("_T")

_EXAMPLE_UUID = "3f2b8c1e-4d5a-4b6c-9e7f-0a1b2c3d4e5f"


class EventIn(BaseModel):
    """An event to record. Which sections a type needs: see API.md, "Events".

    Documentation only: the route validates bodies with ``validate_event``, which applies
    the per-type rules (required sections and fields, sections a type does not take).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "project:one-off-job:pipeline-run:failed",
                    "uuid": "9b0c6a4e-2f61-4d0e-8a5c-1f7e3b2d4c6a",
                    "timestamp": "2026-01-02T03:04:05Z",
                    "project": {"uuid": "5d1c2b3a-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "name": "demo"},
                    "job": {
                        "uuid": "7a8b9c0d-1e2f-4a3b-8c5d-6e7f8a9b0c1d",
                        "name": "nightly",
                        "status": "STARTED",
                        "pipeline_uuid": "0e1f2a3b-4c5d-4e6f-8a8b-9c0d1e2f3a4b",
                        "pipeline_name": "train",
                        "total_runs": 2,
                    },
                    "pipeline_run": {
                        "uuid": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                        "status": "FAILURE",
                        "number": 0,
                        "steps": [{"uuid": _EXAMPLE_UUID, "title": "Load"}],
                        "parameters": {_EXAMPLE_UUID: {"rows": 1000}, "pipeline_parameters": {"seed": 42}},
                        "failed_steps": [{"uuid": _EXAMPLE_UUID, "title": "Load"}],
                    },
                }
            ]
        },
    )

    type: str = Field(description="A catalog event type, e.g. project:created.")
    uuid: UUID | None = Field(default=None, description="Producer-chosen id; the idempotency key.")
    timestamp: AwareDatetime | None = Field(default=None, description="When it happened; default: now.")
    project: ProjectSection | None = None
    pipeline: PipelineSection | None = None
    session: SessionSection | None = None
    environment: EnvironmentSection | None = None
    image_build: ImageBuildSection | None = None
    job: JobSectionDoc | None = None
    run: RunSection | None = None
    pipeline_run: CronPipelineRunSection | None = None
    update: UpdateSection | None = None


# One validation problem, shaped like FastAPI's 422 ``detail`` items:
# ``{"loc": (...), "msg": str, "type": str}``. A plain dict (not a TypedDict) so that it
# passes wherever FastAPI and our error types take ``dict[str, Any]``.
ErrorDict = dict[str, Any]


@dataclass(frozen=True)
class ValidatedEvent:
    """A valid event body. ``sections`` is JSON-ready (uuids and UTC timestamps as strings,
    optional fields left out), so equal bodies give equal ``sections``."""

    type: str
    kind: str
    uuid: UUID | None
    timestamp: datetime | None
    sections: dict[str, Any]


_UUID_ADAPTER: TypeAdapter[UUID] = TypeAdapter(UUID)
_TIMESTAMP_ADAPTER: TypeAdapter[datetime] = TypeAdapter(Timestamp)


def storable_json_text(text: bytes) -> bool:
    """Whether every string that ``orjson.loads(text)`` gives can be stored and sent back out.

    orjson refuses NaN, infinities and unpaired surrogates, so the one unstorable value it lets
    through is the NUL character, which JSON text can only spell as the escape ``\\u0000``.
    """
    return b"\\u0000" not in text


def validate_event(
    raw: object, loc: tuple[str | int, ...] = ("body",), *, text_checked: bool = False
) -> ValidatedEvent | list[ErrorDict]:
    """Validate one ingest body; never raises for any parsed JSON value.

    Returns the ``ValidatedEvent``, or every problem found as FastAPI-shaped errors whose
    ``loc`` starts with ``loc`` (``("body",)`` for a single event, ``("body", "events", i)``
    for a batch item). The route turns a list into a 422 (``RequestValidationError``).
    ``text_checked`` says that ``raw`` was parsed by orjson from a text that
    ``storable_json_text`` passed, so that only the nesting depth is left to check.
    """
    if not isinstance(raw, dict):
        return [_error(loc, "Input should be a valid dictionary", "dict_type")]
    errors = _unstorable_values(raw, loc) if not text_checked or _too_deep(raw) else []

    kind: str | None = None
    type_name = raw.get("type")
    if "type" not in raw:
        errors.append(_error((*loc, "type"), "Field required", "missing"))
    elif not isinstance(type_name, str):
        errors.append(_error((*loc, "type"), "Input should be a valid string", "string_type"))
    elif type_name not in CATALOG:
        why = "ping is reserved for test deliveries" if type_name == PING else "not a catalog event type"
        errors.append(
            _error((*loc, "type"), f"Unknown event type {_shorten(type_name)}: {why}", "value_error")
        )
    else:
        kind = CATALOG[type_name].kind

    event_uuid = _validate_scalar(raw, "uuid", _UUID_ADAPTER, loc, errors)
    timestamp = _validate_scalar(raw, "timestamp", _TIMESTAMP_ADAPTER, loc, errors)

    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            errors.append(_error((*loc, key), "Extra inputs are not permitted", "extra_forbidden"))

    if kind is None:
        return errors
    sections = _validate_sections(raw, kind, str(type_name), loc, errors)
    if errors:
        return errors
    return ValidatedEvent(
        type=str(type_name), kind=kind, uuid=event_uuid, timestamp=timestamp, sections=sections
    )


def _validate_sections(
    raw: dict[Any, Any], kind: str, type_name: str, loc: tuple[str | int, ...], errors: list[ErrorDict]
) -> dict[str, Any]:
    specs = SECTIONS_BY_KIND[kind]
    sections: dict[str, Any] = {}
    for name in SECTION_NAMES:
        spec = specs.get(name)
        if spec is None:
            if name in raw:
                msg = f"Section not taken by event type {type_name!r}"
                errors.append(_error((*loc, name), msg, "extra_forbidden"))
            continue
        if name not in raw or (raw[name] is None and not spec.required):
            if spec.required:
                errors.append(_error((*loc, name), "Field required", "missing"))
            continue
        try:
            model = spec.model.model_validate(raw[name])
        except ValidationError as exc:
            errors.extend(_from_pydantic(exc, (*loc, name)))
            continue
        if not errors:  # an unstorable value found earlier might not even serialize
            sections[name] = model.model_dump(mode="json", exclude_unset=True)
    return sections


def _validate_scalar(
    raw: dict[Any, Any],
    key: str,
    adapter: TypeAdapter[_T],
    loc: tuple[str | int, ...],
    errors: list[ErrorDict],
) -> _T | None:
    value = raw.get(key)
    if value is None:  # absent or null: "not given"
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors.extend(_from_pydantic(exc, (*loc, key)))
        return None


def _unstorable_values(raw: dict[Any, Any], loc: tuple[str | int, ...]) -> list[ErrorDict]:
    """Values that are valid JSON for Python but cannot be stored or sent back out.

    PostgreSQL refuses NUL characters in text and JSONB, lone surrogates cannot be encoded
    as UTF-8, NaN/Infinity are not JSON, and very deep nesting cannot be serialized. Checked
    iteratively, so no input can exhaust the stack.
    """
    errors: list[ErrorDict] = []
    stack: list[tuple[tuple[str | int, ...], object]] = [((), raw)]
    while stack and len(errors) < MAX_REPORTED_ERRORS:
        path, value = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            errors.append(_error((*loc, *path), f"Nested deeper than {MAX_JSON_DEPTH} levels", "value_error"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and not _storable_text(key):
                    errors.append(_error((*loc, *path, key[:100]), _BAD_TEXT, "value_error"))
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and not _storable_text(value):
            errors.append(_error((*loc, *path), _BAD_TEXT, "value_error"))
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(_error((*loc, *path), "Input should be a finite number", "finite_number"))
    return errors


def _too_deep(raw: dict[Any, Any]) -> bool:
    """Whether some value of ``raw`` lies deeper than ``MAX_JSON_DEPTH`` (one level at a time).

    For orjson's output only: its containers are exactly ``dict`` and ``list``, and testing the
    exact type is half the cost of ``isinstance`` (this walk is ~5 % of batch ingest's CPU).
    """
    level: list[Any] = [raw]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for container in level
            for child in (container.values() if type(container) is dict else container)
            if type(child) is dict or type(child) is list
        ]
        if not level:
            return False
    return any(level)  # a non-empty container at the limit holds a value below it


_BAD_TEXT = "Text must not contain NUL characters or unpaired surrogates"


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _from_pydantic(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[ErrorDict]:
    return [
        _error((*prefix, *err["loc"]), err["msg"], err["type"])
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _error(loc: tuple[str | int, ...], msg: str, type_: str) -> ErrorDict:
    return {"loc": loc, "msg": msg, "type": type_}


def _shorten(text: str, limit: int = 100) -> str:
    # Messages echo user input: keep them bounded.
    return repr(text if len(text) <= limit else text[:limit] + "…")
