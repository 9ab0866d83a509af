"""Signing in with an admin API key, and out again; failed sign-ins count in the throttle of
failed authentication, with the API keys' (service.core.auth_throttle)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.config import find_api_key
from service.core.auth_throttle import AuthThrottle, client_key
from service.core.console_sessions import MAX_SESSION_SECONDS, end_session, start_session
from service.db import transaction
from service.web import security
from service.web.context import Viewer, anonymous, read_form, signed_in

router = APIRouter()

WRONG_KEY = "That key does not open the console: sign in with an admin API key."
THROTTLED = "Too many failed sign-ins from your address: try again in {minutes} minutes."
VIA = "console sign-in"


def _throttled(viewer: Viewer, retry_after_s: int) -> Response:
    minutes = math.ceil(retry_after_s / 60)
    answer = viewer.render("login.html", status_code=429, login_error=THROTTLED.format(minutes=minutes))
    answer.headers["Retry-After"] = str(retry_after_s)
    return answer


@router.get("/login")
async def login_page(request: Request) -> Response:
    viewer = anonymous(request)
    if not viewer.keys_configured or await signed_in(request) is not None:
        return viewer.redirect("/")
    return viewer.render("login.html", login_error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    viewer = anonymous(request)
    form = await read_form(request, viewer, change=False)
    if not viewer.keys_configured:
        return viewer.redirect("/")
    # The peer's address, or the client's that a trusted proxy names (service.api.forwarded).
    client = client_key(request.client.host if request.client else None)
    throttle: AuthThrottle = request.app.state.auth_throttle
    # Signing in is rare: the shared counts are read before the key, so an address blocked
    # through another replica is refused here too.
    blocked_s = await throttle.check(viewer.state.sessions, client)
    if blocked_s:
        throttle.refused(client, VIA)
        return _throttled(viewer, blocked_s)
    key = find_api_key(viewer.state.settings.parsed_api_keys, form.get("api_key"))
    if key is None or key.scope != "admin":
        verdict = await throttle.fail(viewer.state.sessions, client, VIA)
        if not verdict.counted:
            return _throttled(viewer, verdict.standing.retry_after_s)
        return viewer.render("login.html", status_code=401, login_error=WRONG_KEY)
    async with transaction(viewer.state.sessions) as session:
        token = await start_session(session, api_key=key.key)
    viewer.set_cookie(security.SESSION_COOKIE, token, MAX_SESSION_SECONDS)
    return viewer.redirect("/")


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = await signed_in(request)
    if viewer is None:
        return anonymous(request).redirect("/login")
    await read_form(request, viewer, change=False)
    async with transaction(viewer.state.sessions) as session:
        await end_session(session, viewer.csrf_secret)
    viewer.set_cookie(security.SESSION_COOKIE, "", 0)
    return viewer.redirect("/login")
