"""The console's defences: session and CSRF cookies, the per-session CSRF token, the ``Origin``
check, and the security headers of every page (``SecurityHeaders``).

A state-changing request must come from a page of ours: its ``Origin`` (or, without one, its
``Referer``) names this host, and its form carries the CSRF token, an HMAC of the session's
secret (the session token once signed in; before that, or with no API keys configured, a
random cookie of its own). Both cookies are HttpOnly and ``SameSite=Strict``, so another site
can neither read nor send them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.core.callers import Forbidden

SESSION_COOKIE = "herald_session"
PORTAL_COOKIE = "herald_portal"
CSRF_COOKIE = "herald_csrf"
CSRF_FIELD = "csrf_token"
_CSRF_LABEL = b"herald console csrf"

# One policy for the console, the portal and /docs: Swagger UI's bundle and our starter are files
# of ours, and it styles through the CSSOM, which style-src does not restrict (checked in the
# browser tests). Only the portal may be framed, by the sites HERALD_PORTAL_FRAME_ANCESTORS names.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors "
)
NO_FRAMES = "'none'"
PAGE_CSP = _CSP + NO_FRAMES
PAGE_PREFIXES = ("/ui", "/docs", "/portal")
STATIC_PREFIXES = ("/ui/static/", "/portal/static/", "/docs/assets/")


def embeddable(settings: Settings) -> bool:
    """Whether another site may frame the portal (HERALD_PORTAL_FRAME_ANCESTORS is not 'none')."""
    return settings.portal_frame_ancestors != NO_FRAMES


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: str) -> str:
    """The CSRF token of forms shown to the holder of ``secret``."""
    digest = hmac.new(secret.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_https(request: Request) -> bool:
    # Behind a TLS proxy, the scheme is the proxy's X-Forwarded-Proto when HERALD_PROXY_HEADERS
    # trusts it (service.api.forwarded); a header from anyone else changes nothing.
    return request.url.scheme == "https"


def check_origin(request: Request) -> None:
    """403 unless the request's ``Origin`` (or ``Referer``) is this host; a request with neither
    (not a browser's) is judged by its CSRF token alone."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return
    host = request.headers.get("host", "")
    try:
        netloc = urlsplit(source).netloc
    except ValueError:
        netloc = ""
    if source == "null" or not host or not hmac.compare_digest(netloc.lower(), host.lower()):
        raise Forbidden("cross-site request refused")


def check_csrf(expected: str, presented: str | None) -> None:
    if presented is None or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def _page_headers(path: str, portal_frame_ancestors: str) -> list[tuple[bytes, bytes]]:
    static = path.startswith(STATIC_PREFIXES)
    portal = path == "/portal" or path.startswith("/portal/")
    ancestors = portal_frame_ancestors if portal else NO_FRAMES
    headers = [
        (b"content-security-policy", (_CSP + ancestors).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]
    if ancestors == NO_FRAMES:  # X-Frame-Options knows no list of sites: only for "never framed"
        headers.append((b"x-frame-options", b"DENY"))
    if not static:
        headers.append((b"cache-control", b"no-store"))
    return headers


class SecurityHeaders:
    """Adds the CSP and friends to every answer under ``/ui``, ``/portal`` and ``/docs`` (pure
    ASGI); ``portal_frame_ancestors`` is the portal's ``frame-ancestors`` sources."""

    def __init__(self, app: ASGIApp, portal_frame_ancestors: str = NO_FRAMES) -> None:
        self.app = app
        self.portal_frame_ancestors = portal_frame_ancestors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PAGE_PREFIXES):
            await self.app(scope, receive, send)
            return
        extra = _page_headers(path, self.portal_frame_ancestors)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(n, v) for n, v in message.get("headers", ()) if n not in names]
                message["headers"] = [*kept, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
