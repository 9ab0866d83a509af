"""The event catalog."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from service.api.deps import StateDep
from service.catalog import CATALOG, OPERATIONAL
from service.db import read_session
from service.schemas.event_responses import EventTypeList, EventTypeOut

router = APIRouter(prefix="/api/v1", tags=["event types"])


@router.get(
    "/event-types",
    summary="List the event catalog",
    description=(
        "All catalog types, then Herald's own operational types (`herald:*`, `operational: true`; "
        "recorded by Herald, never ingested), in one answer (`next_cursor` is always null). "
        "`ping` is not listed."
    ),
)
async def list_event_types(state: StateDep) -> EventTypeList:
    async with read_session(state.sessions) as session:
        rows = (await session.execute(text("SELECT name, description FROM event_types"))).all()
    descriptions = {row.name: row.description for row in rows}
    return EventTypeList(
        items=[
            EventTypeOut(
                name=info.name,
                description=descriptions.get(info.name, info.description),
                optional_filters=[list(f) for f in info.optional_filters],
                operational=info.name in OPERATIONAL,
            )
            for info in (*CATALOG.values(), *OPERATIONAL.values())
        ]
    )
