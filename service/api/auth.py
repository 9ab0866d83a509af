"""API keys: ``Authorization: Bearer <key>`` with the scopes ``admin`` and ``ingest``.

``ApiKeys``, a pure ASGI middleware, decides before any route runs or any body is read: the
ingest routes take either scope, every other path of the API (``/api/...``, ``/metrics``) needs
``admin``, and the rest (``/health/*``, ``/docs``, ``/openapi.json``) is open. With no keys
configured the API (and so ``/metrics``) is open (the CLI only allows that on a loopback
address). A path under ``/api/`` that matches no route still needs a key, so routes cannot be
probed without one. ``document_security`` declares the scheme in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.responses import json_response
from service.config import ApiKey, find_api_key
from service.config import Scope as KeyScope

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


def refusal(keys: tuple[ApiKey, ...], method: str, path: str, token: str | None) -> tuple[int, str] | None:
    """Why a request may not go on, as (status, detail), or ``None`` when it may."""
    needed = required_scope(method, path)
    if not keys or needed is None:
        return None
    if token is None:
        return 401, MISSING_KEY
    key = find_api_key(keys, token)
    if key is None:
        return 401, UNKNOWN_KEY
    if needed == "admin" and key.scope != "admin":
        return 403, WRONG_SCOPE
    return None


class ApiKeys:
    """401 (with ``WWW-Authenticate: Bearer``) or 403 before the route, as the module says."""

    def __init__(self, app: ASGIApp, keys: tuple[ApiKey, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys:
            refused = refusal(self.keys, scope["method"], scope["path"], bearer_token(scope["headers"]))
            if refused is not None:
                status, detail = refused
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                await json_response({"detail": detail}, status, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def document_security(schema: dict[str, Any]) -> None:
    """Declare the bearer scheme, and require it on every guarded operation (Swagger's Authorize)."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME_NAME] = SECURITY_SCHEME
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if required_scope(method.upper(), path) is not None:
                operation["security"] = [{SCHEME_NAME: []}]
