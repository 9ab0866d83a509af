"""The portal's own pages: the entry of a one-time link (a page, then its button), the portal's
front page, leaving.

Every other portal page is a console page served under the portal's base with the session's
project scope (``service.web.install_web``), so the portal shows and allows exactly what that
scope does.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.core.callers import Caller
from service.core.console_sessions import end_session
from service.core.portal_links import ENTRY_PATH, Refusal, check_link, exchange
from service.db import read_session, transaction
from service.web import security
from service.web.context import Viewer, ViewerDep, anonymous, read_form, signed_in

router = APIRouter()

TOKEN_MAX_CHARS = 100
REFUSALS = {
    Refusal.UNKNOWN: "This link does not open a portal. Ask for a new one.",
    Refusal.USED: "This link was used already: it opens the portal once. Ask for a new one.",
    Refusal.EXPIRED: "This link has expired. Ask for a new one.",
    Refusal.REVOKED: "This link was revoked. Ask for a new one.",
}


def _gone(viewer: Viewer, refusal: Refusal) -> Response:
    detail = REFUSALS[refusal]
    return viewer.render("portal_gone.html", status_code=410, title="Link not valid", detail=detail)


@router.get("/enter/{token}")
async def entry(request: Request, token: str) -> Response:
    """The link's page: one button that opens the portal. It spends nothing and sets no cookie,
    so a chat app's link preview, a mail scanner or a prefetch leaves the link usable."""
    viewer = anonymous(request, csrf_cookie=False)
    if len(token) > TOKEN_MAX_CHARS:
        return _gone(viewer, Refusal.UNKNOWN)
    async with read_session(viewer.state.sessions) as session:
        found = await check_link(session, token)
    if isinstance(found, Refusal):
        return _gone(viewer, found)
    # The scope the link will open, for the page's header only: it reads nothing.
    viewer = replace(viewer, scope=Caller(project_uuid=found.project_uuid, read_only=found.read_only))
    return viewer.render("portal_enter.html", title="Open the portal", action=ENTRY_PATH + token, link=found)


@router.post("/enter/{token}")
async def enter(request: Request, token: str) -> Response:
    """The button of the link's page: spend the link, start the portal session, open the portal.

    The visitor has no session yet, so there is no cookie a CSRF token could be bound to (the
    link's page sets none); the link's token, in the URL, is the credential. What a forged POST
    could still do is sign a victim's browser into the forger's own portal (login CSRF): the
    ``Origin`` check refuses a POST from another site's page, as on every other form.
    """
    security.check_origin(request)
    viewer = anonymous(request, csrf_cookie=False)
    if len(token) > TOKEN_MAX_CHARS:
        return _gone(viewer, Refusal.UNKNOWN)
    async with transaction(viewer.state.sessions) as session:
        outcome = await exchange(session, token)
    if isinstance(outcome, Refusal):
        return _gone(viewer, outcome)
    link = outcome.link
    assert link.used_at is not None
    lifetime_s = max(1, int((link.expires_at - link.used_at).total_seconds()))
    viewer.set_cookie(security.PORTAL_COOKIE, outcome.session_token, lifetime_s)
    return viewer.redirect("/webhooks")


@router.get("/")
async def front(viewer: ViewerDep) -> Response:
    return viewer.redirect("/webhooks")


@router.post("/logout")
async def leave(request: Request) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return anonymous(request).render("portal_gone.html", title="Portal closed", detail=CLOSED)
    await read_form(request, viewer, change=False)
    async with transaction(viewer.state.sessions) as session:
        await end_session(session, viewer.csrf_secret)
    viewer.set_cookie(security.PORTAL_COOKIE, "", 0)
    return viewer.render("portal_gone.html", title="Portal closed", detail=CLOSED)


CLOSED = "You left the portal. Open it again with a new link."
