"""Portal links (admin): one-time links that open a project's portal, listed and revoked."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from service.api.deps import StateDep
from service.api.responses import error_responses
from service.core import portal_links as core
from service.db import read_session, transaction
from service.schemas.common import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    decode_time_cursor,
    time_page,
)
from service.schemas.portal_links import (
    PortalLinkCreate,
    PortalLinkCreated,
    PortalLinkPage,
    portal_link_out,
)

router = APIRouter(prefix="/api/v1/portal-links", tags=["portal"])


@router.post(
    "",
    status_code=201,
    summary="Make a one-time link to a project's portal",
    description=(
        "A `GET` of `url` shows a page with one button, *Open portal*, and spends nothing (a link "
        "preview or a mail scanner leaves the link usable); the button's `POST` to the same `url` opens "
        "a portal session for the project that ends at `expires_at`. Once used, expired or revoked, "
        "`url` answers a 410 page. This answer is the only one that shows `url`."
    ),
    responses=error_responses(413, 422, 503),
)
async def create_portal_link(body: PortalLinkCreate, request: Request, state: StateDep) -> PortalLinkCreated:
    async with transaction(state.sessions) as session:
        link, token = await core.create_link(
            session, body.project_uuid, lifetime_s=body.expires_in_seconds, read_only=body.read_only
        )
    url = core.link_url(str(request.base_url), token)
    return PortalLinkCreated(**portal_link_out(link).model_dump(), url=url)


@router.get(
    "",
    summary="List portal links",
    description="Newest first, never with their URLs.",
    responses=error_responses(422, 503),
)
async def list_portal_links(
    state: StateDep,
    project_uuid: Annotated[UUID | None, Query(description="Only the links of this project.")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> PortalLinkPage:
    after = decode_time_cursor(cursor)
    async with read_session(state.sessions) as session:
        found = await core.list_links(session, project_uuid, after, limit + 1)
    page, next_cursor = time_page(found, limit)
    return PortalLinkPage(items=[portal_link_out(link) for link in page], next_cursor=next_cursor)


@router.delete(
    "/{uuid}",
    status_code=204,
    summary="Revoke a portal link",
    description="Its URL opens nothing any more, and every portal session started from it ends now.",
    responses=error_responses(404, 422, 503),
)
async def revoke_portal_link(
    uuid: Annotated[UUID, Path(description="The link's uuid.")], state: StateDep
) -> Response:
    async with transaction(state.sessions) as session:
        await core.revoke_link(session, uuid)
    return Response(status_code=204)
