"""The web console under ``/ui/`` and the offline API reference at ``/docs``.

Pages are rendered on the server from Jinja2 templates (``templates/``), styled and scripted by
the static files of ``static/``; nothing is fetched from another host. ``install_web`` adds it
all to the app: the page routes, the static files, the security headers, and the answers of
errors on pages (an HTML page, or the sign-in page when there is no session).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.errors import HeraldError, NotFound
from service.web.context import CONSOLE_BASE, LoginRequired, anonymous
from service.web.docs import install_docs
from service.web.pages import auth, deliveries, events, overview, webhook_actions, webhooks
from service.web.security import SecurityHeaders

STATIC_DIR = Path(__file__).with_name("static")
PAGE_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    overview.router,
    webhooks.router,
    webhook_actions.router,
    deliveries.router,
    events.router,
)

ERROR_TITLES = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Not valid"}


def _install_error_pages(app: FastAPI) -> None:
    api_handler = app.exception_handlers.get(HeraldError)

    async def herald_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HeraldError)
        if not request.url.path.startswith(CONSOLE_BASE + "/") or api_handler is None:
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
        if request.url.path.startswith(CONSOLE_BASE + "/") or validation_handler is None:
            return await herald_error(request, NotFound("no such page"))
        answer = validation_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(CONSOLE_BASE + "/login", status_code=303)

    app.add_exception_handler(HeraldError, herald_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(RequestValidationError, invalid_request)


def install_web(app: FastAPI) -> None:
    """Add the console, its assets and ``/docs`` to ``app`` (after its error handlers)."""
    app.add_middleware(SecurityHeaders)
    app.mount(CONSOLE_BASE + "/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for router in PAGE_ROUTERS:
        app.include_router(router, prefix=CONSOLE_BASE, include_in_schema=False)
    install_docs(app)
    _install_error_pages(app)
