"""Behind a reverse proxy: the client, scheme and host that the proxy says a request came with.

``ForwardedHeaders``, a pure ASGI middleware and the outermost one when ``HERALD_PROXY_HEADERS``
is on, believes ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` only from a
peer that ``HERALD_FORWARDED_ALLOW_IPS`` trusts. From such a peer they become the request's
client address (what the throttle of failed authentication counts against), its scheme (the
``Secure`` flag of cookies) and its ``Host`` (the links Herald builds, the console's ``Origin``
check); from any other peer they are left as they are and mean nothing.

uvicorn's own ``--proxy-headers`` handles the first two only, and rewrites the client before the
application could tell whether the peer was trusted, so Herald keeps it off and does all three
here, for one process and for ``--workers`` alike.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from service.config import TrustedProxies

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"
FORWARDED_HOST = b"x-forwarded-host"
SCHEMES = frozenset({"http", "https"})
# A host name or an address, with a port: what may stand in links and in the Host header.
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def forwarded_client(value: str, trusted: TrustedProxies) -> str | None:
    """The client of an ``X-Forwarded-For`` list: each proxy appends the address it got the
    request from, so the client is the last address that is not a trusted proxy (the first, if
    all are); ``None`` when that is not an IP address."""
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    for candidate in reversed(addresses):
        if not trusted.trust(_address(candidate)):
            return _address(candidate)
    return _address(addresses[0]) if addresses else None


def _last(value: str) -> str:
    # The value the nearest proxy (a trusted one) set, when several proxies each added theirs.
    return value.rsplit(",", 1)[-1].strip()


def forwarded_scope(scope: Scope, trusted: TrustedProxies) -> Scope:
    """``scope`` with the client, scheme and ``Host`` of its ``X-Forwarded-*`` headers (the peer
    is trusted); a value that is not an address, a scheme or a host name changes nothing."""
    found: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        if name in (FORWARDED_FOR, FORWARDED_PROTO, FORWARDED_HOST):
            found.setdefault(name, []).append(value.decode("latin-1"))
    if not found:
        return scope
    scope = dict(scope)
    if FORWARDED_FOR in found:
        client = forwarded_client(",".join(found[FORWARDED_FOR]), trusted)
        if client is not None:
            scope["client"] = (client, 0)
    if FORWARDED_PROTO in found:
        scheme = _last(found[FORWARDED_PROTO][-1]).lower()
        if scheme in SCHEMES:
            scope["scheme"] = scheme
    if FORWARDED_HOST in found:
        host = _last(found[FORWARDED_HOST][-1])
        if _HOST_RE.match(host):
            headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
            scope["headers"] = [*headers, (b"host", host.encode("latin-1"))]
    return scope


class ForwardedHeaders:
    """The ``X-Forwarded-*`` headers of trusted peers applied to the request, as the module says."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            if self.trusted.trust(peer[0] if peer else None):
                scope = forwarded_scope(scope, self.trusted)
        await self.app(scope, receive, send)
