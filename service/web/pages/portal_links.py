"""The console's Portal links page: make a one-time link to a project's portal, list, revoke."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.core import portal_links as core
from service.db import read_session, transaction
from service.errors import NotFound
from service.schemas.common import time_page
from service.schemas.portal_links import (
    LIFETIME_DEFAULT_SECONDS,
    LIFETIME_MAX_SECONDS,
    LIFETIME_MIN_SECONDS,
)
from service.web.context import Viewer, ViewerDep, read_form
from service.web.pages.common import PAGE_SIZE, Problems, parse_uuid, time_cursor

router = APIRouter()

REVOKED = "Link revoked: it opens nothing now, and its portal sessions ended."

# The expiry choices of the form, in seconds (the API takes any value in its range).
LIFETIMES = ((3600, "1 hour"), (86_400, "1 day"), (604_800, "7 days"), (LIFETIME_MIN_SECONDS, "5 minutes"))


def _admin(viewer: Viewer) -> None:
    if not viewer.scope.is_admin:
        raise NotFound("no such page")


async def _page(
    viewer: Viewer,
    *,
    status_code: int = 200,
    problems: Problems | None = None,
    created_url: str | None = None,
    notice: str | None = None,
    cursor: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    problems = problems or Problems()
    after = time_cursor(cursor, problems)
    async with read_session(viewer.state.sessions) as session:
        links, next_cursor = time_page(await core.list_links(session, None, after, PAGE_SIZE + 1), PAGE_SIZE)
        now = await core.database_now(session)
    return viewer.render(
        "portal_links.html",
        status_code=status_code,
        section="portal-links",
        links=links,
        now=now,
        lifetimes=LIFETIMES,
        default_lifetime=LIFETIME_DEFAULT_SECONDS,
        values=values or {"project": "", "lifetime": str(LIFETIME_DEFAULT_SECONDS)},
        problems=problems,
        created_url=created_url,
        notice=notice,
        next_cursor=next_cursor,
    )


@router.get("/portal-links")
async def portal_links(viewer: ViewerDep, cursor: str = "", done: str = "") -> Response:
    _admin(viewer)
    notice = (
        "Link revoked: it opens nothing now, and its portal sessions ended." if done == "revoked" else None
    )
    return await _page(viewer, cursor=cursor, notice=notice)


@router.post("/portal-links")
async def create_portal_link(request: Request, viewer: ViewerDep) -> Response:
    _admin(viewer)
    form = await read_form(request, viewer)
    problems = Problems()
    values = {"project": form.get("project_uuid"), "lifetime": form.get("lifetime")}
    project = parse_uuid(values["project"], "project", problems, "Project")
    if project is None and not problems:
        problems.add("project", "Project is needed: the uuid of the project the portal shows")
    text = values["lifetime"]
    lifetime = int(text) if text.isdigit() else 0
    if not LIFETIME_MIN_SECONDS <= lifetime <= LIFETIME_MAX_SECONDS:
        problems.add("lifetime", "Expiry must be from 5 minutes to 7 days")
    if problems or project is None:
        return await _page(viewer, status_code=422, problems=problems, values=values)
    async with transaction(viewer.state.sessions) as session:
        _, token = await core.create_link(
            session, project, lifetime_s=lifetime, read_only=form.has("read_only")
        )
    url = str(request.base_url).rstrip("/") + core.ENTRY_PATH + token
    return await _page(viewer, status_code=201, created_url=url)


@router.post("/portal-links/{uuid}/revoke")
async def revoke_portal_link(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    _admin(viewer)
    await read_form(request, viewer)
    async with transaction(viewer.state.sessions) as session:
        await core.revoke_link(session, uuid)
    return viewer.redirect("/portal-links?done=revoked")
