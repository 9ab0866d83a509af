"""API keys: ``Authorization: Bearer <key>`` with the scopes ``admin`` and ``ingest``.

One app-wide dependency decides for every route: open routes need nothing, ingest routes take
either scope, everything else needs ``admin`` — ``/metrics`` included. With no keys configured the
API (and so ``/metrics``) is open (the CLI only allows that on a loopback address). ``/docs`` and
``/openapi.json`` are not API routes and need no key.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.config import ApiKey, Scope, Settings
from service.errors import HeraldError

# Routes (method, path template) an ``ingest`` key may call.
INGEST_ROUTES = frozenset(
    {
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/events/batch"),
        ("POST", "/api/v1/analytics"),
        ("GET", "/api/v1/event-types"),
        ("GET", "/api/v1/analytics/events"),
    }
)
OPEN_PREFIXES = ("/health/",)

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from HERALD_API_KEYS (`admin` scope: everything; `ingest`: sending events).",
)


class Unauthorized(HeraldError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(HeraldError):
    status_code = 403


def find_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The configured key equal to ``presented``, compared in constant time against every key."""
    found: ApiKey | None = None
    candidate = presented.encode()
    for key in keys:
        if hmac.compare_digest(key.key.encode(), candidate):
            found = key
    return found


def required_scope(method: str, path_template: str) -> Scope | None:
    """The scope a route needs: ``None`` (open), ``"ingest"`` (either key) or ``"admin"``."""
    if path_template.startswith(OPEN_PREFIXES):
        return None
    if (method, path_template) in INGEST_ROUTES:
        return "ingest"
    return "admin"


async def authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    settings: Settings = request.app.state.settings
    keys = settings.parsed_api_keys
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    needed = required_scope(request.method, template)
    if not keys or needed is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    key = find_key(keys, credentials.credentials)
    if key is None:
        raise Unauthorized("unknown API key")
    if needed == "admin" and key.scope != "admin":
        raise Forbidden("this API key's scope (ingest) does not allow this operation")
