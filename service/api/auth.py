"""API keys: ``Authorization: Bearer <key>`` with the scopes ``admin`` and ``ingest``.

``ApiKeys``, a pure ASGI middleware, decides before any route runs or any body is read: the
ingest routes take either scope, every other path of the API (``/api/...``, ``/metrics``) needs
``admin``, and the rest (``/health/*``, ``/docs``, ``/openapi.json``) is open. With no keys
configured the API (and so ``/metrics``) is open (the CLI only allows that on a loopback
address). A path under ``/api/`` that matches no route still needs a key, so routes cannot be
probed without one. ``document_security`` declares the scheme in the OpenAPI schema.

An unknown key counts against the client's address in the throttle of failed authentication
(``service.core.auth_throttle``, shared with the console's sign-in): a blocked address gets 429
with ``Retry-After`` whatever it presents. A valid key costs no database round trip; only
failures do.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.responses import json_response
from service.config import ApiKey, find_api_key
from service.config import Scope as KeyScope
from service.core.auth_throttle import AuthThrottle, client_key
from service.db import is_database_unavailable
from service.state import HeraldState

# Routes (method, path) an ``ingest`` key may call. All are fixed paths, no parameters.
INGEST_ROUTES = frozenset(
    {
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/events/batch"),
        ("POST", "/api/v1/analytics"),
        ("GET", "/api/v1/event-types"),
        ("GET", "/api/v1/analytics/events"),
    }
)
GUARDED_PREFIXES = ("/api/", "/metrics")

SCHEME_NAME = "HTTPBearer"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": ("An API key from HERALD_API_KEYS (`admin` scope: everything; `ingest`: sending events)."),
}

MISSING_KEY = "missing API key: send Authorization: Bearer <key>"
UNKNOWN_KEY = "unknown API key"
WRONG_SCOPE = "this API key's scope (ingest) does not allow this operation"
THROTTLED = "too many failed authentications from your address: retry in {seconds} s"
UNAVAILABLE = "database unavailable, retry later"
VIA = "API key"


def required_scope(method: str, path: str) -> KeyScope | None:
    """The scope a request needs: ``None`` (open), ``"ingest"`` (either key) or ``"admin"``."""
    if not path.startswith(GUARDED_PREFIXES):
        return None
    # HEAD is answered like GET; a trailing slash is redirected to the route without it.
    if ("GET" if method == "HEAD" else method, path.rstrip("/")) in INGEST_ROUTES:
        return "ingest"
    return "admin"


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header, else ``None``."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _throttled(retry_after_s: int) -> tuple[int, str, dict[str, str]]:
    return 429, THROTTLED.format(seconds=retry_after_s), {"Retry-After": str(retry_after_s)}


class ApiKeys:
    """401 (with ``WWW-Authenticate: Bearer``), 403 or 429 before the route, as the module says.

    ``state`` is the app's: the lifespan puts the database sessions there (``state.herald``).
    """

    def __init__(self, app: ASGIApp, keys: tuple[ApiKey, ...], throttle: AuthThrottle, state: State) -> None:
        self.app = app
        self.keys = keys
        self.throttle = throttle
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys:
            refused = await self._refusal(scope)
            if refused is not None:
                status, detail, headers = refused
                await json_response({"detail": detail}, status, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refusal(self, scope: Scope) -> tuple[int, str, dict[str, str] | None] | None:
        needed = required_scope(scope["method"], scope["path"])
        if needed is None:
            return None
        peer = scope.get("client")
        host = peer[0] if peer else None
        if self.throttle.blocks_any:  # most of the time none: a valid key then costs nothing here
            client = client_key(host)
            blocked_s = self.throttle.blocked_for(client)
            if blocked_s:
                self.throttle.refused(client, VIA)
                return _throttled(blocked_s)
        token = bearer_token(scope["headers"])
        if token is None:
            return 401, MISSING_KEY, {"WWW-Authenticate": "Bearer"}
        key = find_api_key(self.keys, token)
        if key is None:
            return await self._count_failure(client_key(host))
        if needed == "admin" and key.scope != "admin":
            return 403, WRONG_SCOPE, None
        return None

    async def _count_failure(self, client: str) -> tuple[int, str, dict[str, str] | None]:
        herald: HeraldState = self.state.herald
        try:
            verdict = await self.throttle.fail(herald.sessions, client, VIA)
        except Exception as exc:
            # Uncounted, a 401 would be a guess beyond the limit: refuse to judge the key.
            if not is_database_unavailable(exc):
                raise
            return 503, UNAVAILABLE, {"Retry-After": "1"}
        if not verdict.counted:
            return _throttled(verdict.standing.retry_after_s)
        return 401, UNKNOWN_KEY, {"WWW-Authenticate": "Bearer"}


def document_security(schema: dict[str, Any]) -> None:
    """Declare the bearer scheme, and require it on every guarded operation (Swagger's Authorize)."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME_NAME] = SECURITY_SCHEME
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if required_scope(method.upper(), path) is not None:
                operation["security"] = [{SCHEME_NAME: []}]
