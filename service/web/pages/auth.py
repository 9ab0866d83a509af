"""Signing in with an admin API key, and out again; failed sign-ins are throttled per address."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.config import find_api_key
from service.core import sign_in_throttle
from service.core.console_sessions import MAX_SESSION_SECONDS, end_session, start_session
from service.db import transaction
from service.web import security
from service.web.context import anonymous, read_form, signed_in

router = APIRouter()

WRONG_KEY = "That key does not open the console: sign in with an admin API key."
THROTTLED = (
    f"Too many failed sign-ins from your address: try again in {sign_in_throttle.WINDOW_MINUTES} minutes."
)


def _client(request: Request) -> str:
    # The peer address (the proxy's own, unless uvicorn runs with --proxy-headers behind it).
    return request.client.host if request.client else "unknown"


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
    client = _client(request)
    async with transaction(viewer.state.sessions) as session:
        refused = await sign_in_throttle.throttled(session, client)
    if refused:
        return viewer.render("login.html", status_code=429, login_error=THROTTLED)
    key = find_api_key(viewer.state.settings.parsed_api_keys, form.get("api_key"))
    if key is None or key.scope != "admin":
        async with transaction(viewer.state.sessions) as session:
            await sign_in_throttle.record_failure(session, client)
        return viewer.render("login.html", status_code=401, login_error=WRONG_KEY)
    async with transaction(viewer.state.sessions) as session:
        await sign_in_throttle.clear(session, client)
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
