"""Who is looking at a page, and answering them: the ``Viewer`` every page handler gets.

``viewer`` resolves the request's scope on the server: with no API keys configured, the console
is open (admin, no sign-in); otherwise a live session (``herald_session`` cookie, found by the
hash of its token) gives its scope, and no session means the sign-in page (``LoginRequired``).
State-changing requests go through ``read_form``: ``Origin`` check, CSRF token, and the scope's
read-only flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.common.destinations import Resolver, get_resolver
from service.core.callers import ADMIN, NOBODY, Caller, Forbidden
from service.core.console_sessions import MAX_SESSION_SECONDS, find_session, started_with_one_of
from service.db import read_session
from service.state import HeraldState
from service.web import security
from service.web.templating import environment

CONSOLE_BASE = "/ui"
PORTAL_BASE = "/portal"


class LoginRequired(Exception):
    """No session: the answer is a redirect to the sign-in page."""


class PortalClosed(Exception):
    """No portal session: the answer is a page saying how to open the portal (a link)."""


def in_portal(request: Request) -> bool:
    return request.url.path == PORTAL_BASE or request.url.path.startswith(PORTAL_BASE + "/")


@dataclass
class Viewer:
    """The request's scope and what its pages need: the CSRF token, links, pending cookies."""

    request: Request
    state: HeraldState
    scope: Caller
    csrf_secret: str
    signed_in: bool = False
    base: str = CONSOLE_BASE
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        return security.csrf_token(self.csrf_secret)

    @property
    def keys_configured(self) -> bool:
        return bool(self.state.settings.parsed_api_keys)

    def set_cookie(self, name: str, value: str, max_age_s: int) -> None:
        self.cookies.append((name, value, max_age_s))

    def finish(self, response: Response) -> Response:
        https = security.is_https(self.request)
        # A portal embedded in another site's page lives in a third-party frame, where a Strict
        # cookie is never sent: there its cookies are SameSite=None (over https only). The CSRF
        # token and the Origin check still guard every change.
        embedded = self.base == PORTAL_BASE and https and security.embeddable(self.state.settings)
        for name, value, max_age_s in self.cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age_s,
                path=self.base,
                secure=https,
                httponly=True,
                samesite="none" if embedded else "strict",
            )
        return response

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        html = environment().get_template(template).render(viewer=self, base=self.base, **context)
        return self.finish(HTMLResponse(html, status_code=status_code))

    def redirect(self, path: str) -> Response:
        return self.finish(RedirectResponse(self.base + path, status_code=303))


def anonymous(request: Request, *, csrf_cookie: bool = True) -> Viewer:
    """A viewer without a session: its CSRF secret is a cookie of its own (set when missing,
    unless ``csrf_cookie`` is false: a page with no form of ours sets no cookie)."""
    state: HeraldState = request.app.state.herald
    secret = request.cookies.get(security.CSRF_COOKIE)
    base = PORTAL_BASE if in_portal(request) else CONSOLE_BASE
    # In the portal, no session means no scope: an empty project that sees nothing, changes nothing.
    scope = Caller(project_uuid=NOBODY, read_only=True) if base == PORTAL_BASE else ADMIN
    viewer = Viewer(
        request=request, state=state, scope=scope, csrf_secret=secret or security.new_secret(), base=base
    )
    if not secret and csrf_cookie:
        viewer.set_cookie(security.CSRF_COOKIE, viewer.csrf_secret, MAX_SESSION_SECONDS)
    return viewer


async def signed_in(request: Request) -> Viewer | None:
    """The viewer of the request's live session, or ``None``: an admin session in the console, a
    project's session in the portal (never the other way round)."""
    portal = in_portal(request)
    token = request.cookies.get(security.PORTAL_COOKIE if portal else security.SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    state: HeraldState = request.app.state.herald
    async with read_session(state.sessions) as session:
        found = await find_session(session, token)
    if found is None or portal != (found.project_uuid is not None):
        return None
    if portal:
        scope = Caller(project_uuid=found.project_uuid, read_only=found.read_only)
        return Viewer(
            request=request, state=state, scope=scope, csrf_secret=token, signed_in=True, base=PORTAL_BASE
        )
    if found.project_uuid is None:  # an admin session: its key must still be an admin key
        admin_keys = [key.key for key in state.settings.parsed_api_keys if key.scope == "admin"]
        if not started_with_one_of(found, token, admin_keys):
            return None
    scope = Caller(project_uuid=found.project_uuid, read_only=found.read_only)
    return Viewer(request=request, state=state, scope=scope, csrf_secret=token, signed_in=True)


async def viewer(request: Request) -> Viewer:
    """The page's viewer; ``LoginRequired`` when API keys are configured and there is no session
    (``PortalClosed`` in the portal, which always needs the session of a link)."""
    state: HeraldState = request.app.state.herald
    if in_portal(request):
        found = await signed_in(request)
        if found is None:
            raise PortalClosed
        return found
    if not state.settings.parsed_api_keys:
        return anonymous(request)
    found = await signed_in(request)
    if found is None:
        raise LoginRequired
    return found


ViewerDep = Annotated[Viewer, Depends(viewer)]
ResolverDep = Annotated[Resolver | None, Depends(get_resolver)]
"""The API's resolver dependency: a test that stubs it stubs the console's checks too."""

FORM_MAX_BYTES = 256 * 1024


class Form:
    """A submitted ``application/x-www-form-urlencoded`` form."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str) -> str:
        """The field's first value, stripped (empty when absent)."""
        values = self.fields.get(name)
        return values[0].strip() if values else ""

    def getlist(self, name: str) -> list[str]:
        return [value.strip() for value in self.fields.get(name, [])]

    def has(self, name: str) -> bool:
        return name in self.fields


async def read_form(request: Request, viewer: Viewer, *, change: bool = True) -> Form:
    """The form of a state-changing request, once it passed the Origin and CSRF checks (403 else);
    ``change`` ones are refused under a read-only scope too."""
    security.check_origin(request)
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise Forbidden("form too large")
    form = Form(parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    security.check_csrf(viewer.csrf, form.get(security.CSRF_FIELD) or None)
    if change:
        viewer.scope.require_write()
    return form
