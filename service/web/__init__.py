"""The web console under ``/ui/``, a project's portal under ``/portal/``, and the offline API
reference at ``/docs``.

Pages are rendered on the server from Jinja2 templates (``templates/``), styled and scripted by
the static files of ``static/``; nothing is fetched from another host. ``install_web`` adds it
all to the app: the page routes, the static files, the security headers, and the answers of
errors on pages (an HTML page, or the sign-in page when there is no session).

The portal is the console's own pages mounted a second time: the same routers under
``/portal``, where the viewer's scope is the project of the portal session (``Caller``), so
every read and every action is checked against that project on the server.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.config import Settings
from service.errors import HeraldError, NotFound
from service.web.context import CONSOLE_BASE, PORTAL_BASE, LoginRequired, PortalClosed, anonymous, in_portal
from service.web.docs import install_docs
from service.web.pages import (
    auth,
    deliveries,
    events,
    overview,
    portal,
    portal_links,
    webhook_actions,
    webhooks,
)
from service.web.security import SecurityHeaders

STATIC_DIR = Path(__file__).with_name("static")
SHARED_ROUTERS: tuple[APIRouter, ...] = (
    webhooks.router,
    webhook_actions.router,
    deliveries.router,
    events.router,
)
"""The pages of both the console and the portal."""
PAGE_ROUTERS: tuple[APIRouter, ...] = (auth.router, overview.router, portal_links.router, *SHARED_ROUTERS)
PORTAL_ROUTERS: tuple[APIRouter, ...] = (portal.router, *SHARED_ROUTERS)

PORTAL_CLOSED = "The portal opens through a link made for your project. Ask for one."


def _on_page(request: Request) -> bool:
    return request.url.path.startswith(CONSOLE_BASE + "/") or in_portal(request)


ERROR_TITLES = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Not valid"}


def _install_error_pages(app: FastAPI) -> None:
    api_handler = app.exception_handlers.get(HeraldError)

    async def herald_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HeraldError)
        if not _on_page(request) or api_handler is None:
            if api_handler is None:
                raise exc
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        title = ERROR_TITLES.get(exc.status_code, "Something went wrong")
        return anonymous(request).render(
            "error.html", status_code=exc.status_code, title=title, detail=exc.detail
        )

    validation_handler = app.exception_handlers.get(RequestValidationError)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        # A page's path or query that does not parse (a malformed uuid): nothing is there.
        if _on_page(request) or validation_handler is None:
            return await herald_error(request, NotFound("no such page"))
        answer = validation_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(CONSOLE_BASE + "/login", status_code=303)

    async def portal_closed(request: Request, exc: Exception) -> Response:
        viewer = anonymous(request)
        return viewer.render("portal_gone.html", status_code=401, title="Portal closed", detail=PORTAL_CLOSED)

    app.add_exception_handler(HeraldError, herald_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PortalClosed, portal_closed)
    app.add_exception_handler(RequestValidationError, invalid_request)


def install_web(app: FastAPI) -> None:
    """Add the console, its assets and ``/docs`` to ``app`` (after its error handlers)."""
    settings: Settings = app.state.settings
    app.add_middleware(SecurityHeaders, portal_frame_ancestors=settings.portal_frame_ancestors)
    static = StaticFiles(directory=STATIC_DIR)
    app.mount(CONSOLE_BASE + "/static", static, name="console-static")
    app.mount(PORTAL_BASE + "/static", static, name="portal-static")
    for router in PAGE_ROUTERS:
        app.include_router(router, prefix=CONSOLE_BASE, include_in_schema=False)
    for router in PORTAL_ROUTERS:
        app.include_router(router, prefix=PORTAL_BASE, include_in_schema=False)
    install_docs(app)
    _install_error_pages(app)
