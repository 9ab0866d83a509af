"""Events: the feed (type, project, job, time range), an event's page with its payload and
deliveries, and the catalog of event types."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from service.catalog import CATALOG, OPERATIONAL, is_operational
from service.core import feed
from service.core import subscribers as subscriber_reads
from service.core.feed import EventFilter
from service.db import read_session
from service.errors import NotFound
from service.metrics import type_family
from service.schemas.common import encode_cursor
from service.schemas.inputs import NUL_MESSAGE
from service.web.context import ViewerDep
from service.web.pages.common import PAGE_SIZE, WindowDep, parse_uuid, split_page
from service.web.pages.deliveries import subscriber_names

router = APIRouter()

TYPE_MAX_CHARS = 200


def _project_of(payload: dict[str, Any]) -> dict[str, Any]:
    project = payload.get("project")
    return project if isinstance(project, dict) else {}


def summary(payload: dict[str, Any]) -> dict[str, str]:
    """What a feed row shows of an event besides its type and time: its project and job, or for
    an operational event the webhook (and the type of the delivery's event) it is about."""
    if is_operational(str(payload.get("type", ""))):
        subscriber = payload.get("subscriber") or {}
        delivery = payload.get("delivery") or {}
        about = str(delivery.get("event_type", ""))
        return {"project": "", "job": "", "webhook": str(subscriber.get("name", "")), "about": about}
    project = _project_of(payload)
    job = project.get("job") if isinstance(project.get("job"), dict) else {}
    return {
        "project": str(project.get("name", "")),
        "job": str((job or {}).get("name", "")),
        "webhook": "",
        "about": "",
    }


@router.get("/events")
async def events(
    viewer: ViewerDep, window: WindowDep, type: str = "", project: str = "", job: str = ""
) -> Response:
    problems = window.problems
    if len(type) > TYPE_MAX_CHARS:
        problems.add("type", "Type is too long")
        type = ""
    elif "\x00" in type:
        problems.add("type", f"Type {NUL_MESSAGE}")
        type = ""
    wanted = EventFilter(
        type=type or None,
        project_uuid=parse_uuid(project, "project", problems, "Project"),
        job_uuid=parse_uuid(job, "job", problems, "Job"),
        since=window.since,
        until=window.until,
    )
    filters = viewer.scope.events(wanted)
    rows: list[Any] = []
    more = False
    if filters is not None:
        async with read_session(viewer.state.sessions) as session:
            rows, more = split_page(await feed.list_events(session, filters, window.after_seq, PAGE_SIZE + 1))
    items = [orjson.loads(row.payload) for row in rows]
    return viewer.render(
        "events.html",
        section="events",
        events=[(item, summary(item)) for item in items],
        type_names=[*CATALOG, *OPERATIONAL],
        values={"type": type, "project": project, "job": job, **window.inputs()},
        problems=problems,
        next_cursor=encode_cursor(rows[-1].seq) if more else None,
    )


@router.get("/events/{uuid}")
async def event(viewer: ViewerDep, uuid: UUID) -> Response:
    async with read_session(viewer.state.sessions) as session:
        payload = orjson.loads(await feed.event_payload(session, uuid))
        if not viewer.scope.sees_event(_project_of(payload).get("uuid")):
            raise NotFound(f"event {uuid} not found")
        deliveries = await feed.deliveries_of_event(session, uuid)
        owner = viewer.scope.project_uuid
        if owner is not None:  # a project sees only the deliveries to the webhooks it owns
            owned = set(await subscriber_reads.owned_webhooks(session, owner))
            deliveries = [row for row in deliveries if row.subscriber_uuid in owned]
    names = await subscriber_names(viewer, {row.subscriber_uuid for row in deliveries})
    return viewer.render("event.html", section="events", event=payload, deliveries=deliveries, names=names)


@router.get("/event-types")
async def event_types(viewer: ViewerDep) -> Response:
    families: dict[str, list[Any]] = {}
    for info in (*CATALOG.values(), *OPERATIONAL.values()):
        families.setdefault(type_family(info.name), []).append(info)
    return viewer.render("event_types.html", section="event-types", families=families)
