"""The portal's own pages: the entry of a one-time link, the portal's front page, leaving.

Every other portal page is a console page served under the portal's base with the session's
project scope (``service.web.install_web``), so the portal shows and allows exactly what that
scope does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.core.console_sessions import end_session
from service.core.portal_links import Exchanged, Refusal, exchange
from service.db import transaction
from service.web import security
from service.web.context import ViewerDep, anonymous, read_form, signed_in

router = APIRouter()

TOKEN_MAX_CHARS = 100
REFUSALS = {
    Refusal.UNKNOWN: "This link does not open a portal. Ask for a new one.",
    Refusal.USED: "This link was used already: it opens the portal once. Ask for a new one.",
    Refusal.EXPIRED: "This link has expired. Ask for a new one.",
    Refusal.REVOKED: "This link was revoked. Ask for a new one.",
}


@router.get("/enter/{token}")
async def enter(request: Request, token: str) -> Response:
    viewer = anonymous(request)
    if len(token) > TOKEN_MAX_CHARS:
        outcome: Exchanged | Refusal = Refusal.UNKNOWN
    else:
        async with transaction(viewer.state.sessions) as session:
            outcome = await exchange(session, token)
    if isinstance(outcome, Refusal):
        return viewer.render(
            "portal_gone.html", status_code=410, title="Link not valid", detail=REFUSALS[outcome]
        )
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
