"""Event types: the catalog and the operational types (fixed), and the custom types (defined at
run time, docs/events.md "Custom event types")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from sqlalchemy import text

from service.api.deps import StateDep
from service.api.responses import error_responses
from service.catalog import CATALOG, CUSTOM_NAME_MAX_CHARS, OPERATIONAL
from service.core.custom_types import (
    CustomType,
    create_custom_type,
    delete_custom_type,
    list_custom_types,
    update_custom_type,
)
from service.db import read_session, transaction
from service.schemas.event_responses import EventTypeList, EventTypeOut
from service.schemas.event_types import CustomTypeCreate, CustomTypeUpdate
from service.schemas.inputs import NO_NUL

router = APIRouter(prefix="/api/v1", tags=["event types"])

TypeName = Annotated[
    str, Path(max_length=CUSTOM_NAME_MAX_CHARS, description="A custom event type's name."), NO_NUL
]


def _custom_out(custom: CustomType) -> EventTypeOut:
    return EventTypeOut(
        name=custom.name,
        description=custom.description,
        optional_filters=custom.optional_filters_json(),
        operational=False,
        custom=True,
        schema_=custom.schema,
    )


@router.get(
    "/event-types",
    summary="List the event types",
    description=(
        "All catalog types, then Herald's own operational types (`herald:*`, `operational: true`; "
        "recorded by Herald, never ingested), then the custom types by name (`custom: true`, with "
        "their `schema`), in one answer (`next_cursor` is always null). `ping` is not listed."
    ),
    response_model_by_alias=True,
)
async def list_event_types(state: StateDep) -> EventTypeList:
    async with read_session(state.sessions) as session:
        rows = (await session.execute(text("SELECT name, description FROM event_types"))).all()
        custom = await list_custom_types(session)
    descriptions = {row.name: row.description for row in rows}
    built_in = [
        EventTypeOut(
            name=info.name,
            description=descriptions.get(info.name, info.description),
            optional_filters=info.optional_filters_json(),
            operational=info.name in OPERATIONAL,
        )
        for info in (*CATALOG.values(), *OPERATIONAL.values())
    ]
    return EventTypeList(items=[*built_in, *(_custom_out(c) for c in custom)])


@router.post(
    "/event-types",
    status_code=201,
    summary="Create a custom event type",
    description=(
        "Its events are ingested as `{type, uuid?, timestamp?, project_uuid?, data}`, `data` checked "
        "against `schema`. An existing name → 409; an invalid schema → 422 naming the place in it."
    ),
    responses=error_responses(409, 413, 422, 503),
)
async def create_event_type(body: CustomTypeCreate, state: StateDep) -> EventTypeOut:
    async with transaction(state.sessions) as session:
        created = await create_custom_type(session, body.name, body.description, body.schema_)
    return _custom_out(created)


@router.patch(
    "/event-types/{name}",
    summary="Change a custom event type",
    description="`description` and `schema`; events recorded from now on are checked against the new "
    "schema, those recorded stay as they are. Catalog and operational types → 409.",
    responses=error_responses(404, 409, 413, 422, 503),
)
async def update_event_type(name: TypeName, body: CustomTypeUpdate, state: StateDep) -> EventTypeOut:
    async with transaction(state.sessions) as session:
        updated = await update_custom_type(session, name, body.description, body.schema_)
    return _custom_out(updated)


@router.delete(
    "/event-types/{name}",
    status_code=204,
    summary="Delete a custom event type",
    description="No more events of it are accepted; its recorded events stay, and subscriptions naming "
    "it stay too (matching nothing unless the type is created again). Catalog and operational types → 409.",
    responses=error_responses(404, 409, 422, 503),
)
async def delete_event_type(name: TypeName, state: StateDep) -> Response:
    async with transaction(state.sessions) as session:
        await delete_custom_type(session, name)
    return Response(status_code=204)
