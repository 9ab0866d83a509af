"""Herald's one outbound HTTP sender: an ``httpx.Request`` through the guarded aiohttp transport.

Stock httpx spends most of its time in httpcore's pool bookkeeping (~380 POST/s against
~4,100 on the ``httpx-aiohttp`` transport, encode/httpcore#1035), so every request (webhooks,
``test`` pings, telemetry batches) goes through :class:`HttpSender`: it builds the
``httpx.Request`` itself and hands it to the transport, a long-lived aiohttp session under
:class:`~service.delivery.ssrf.GuardedTransport`. ``httpx.AsyncClient`` is left out: its
per-request machinery (URL merging, auth and redirect hooks, cookie extraction, event hooks)
cost about as much CPU as the request itself, and Herald wants none of it: redirects are
never followed, cookies never kept.

TLS verification and the private-destination policy are properties of the transport, hence
two senders, ``verified`` and ``unverified`` (webhooks with ``verify_ssl: false``), and two more
for the webhooks held to the portal's policy when it differs from the admins' (``portal``). All
are created in the lifespan, inside the running event loop, never at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from service.common.destinations import Resolver
from service.common.egress import EgressProxy
from service.delivery.egress import EgressConnector
from service.delivery.http_errors import describe_error
from service.delivery.sending import SendFailed, WebhookResponse
from service.delivery.ssrf import GuardedResolver, GuardedTransport

RESPONSE_EXCERPT_MAX_BYTES = 4096
KEEPALIVE_TIMEOUT_S = 15.0

# Compressed answers could inflate far past the excerpt we keep.
_IDENTITY = (b"Accept-Encoding", b"identity")


@lru_cache(maxsize=4096)
def _parsed(url: str) -> tuple[httpx.URL, bytes]:
    """``url`` parsed, with its ``Host`` header value: done once per subscriber URL, not per request."""
    parsed = httpx.URL(url)
    return parsed, parsed.netloc


@lru_cache(maxsize=64)
def _timeouts(timeout_s: float) -> dict[str, float]:
    # Read by the transport, shared by the requests, never mutated. No "pool" timeout:
    # waiting for a pooled connection is bounded by the attempt's deadline, and aiohttp
    # would arm one more timer per request for it.
    return {"connect": timeout_s, "read": timeout_s}


def build_post(url: str, content: bytes, headers: Mapping[str, str], timeout_s: float) -> httpx.Request:
    """The ``httpx.Request`` of one POST: ``headers`` plus ``Host``, ``Content-Length`` and
    ``Accept-Encoding: identity``, the body already read, ``timeout_s`` per connect and read.

    Raises ``httpx.InvalidURL`` for a URL httpx cannot parse.
    """
    parsed, netloc = _parsed(url)
    raw = [(b"Host", netloc), (b"Content-Length", str(len(content)).encode()), _IDENTITY]
    raw += [(key.encode("ascii"), value.encode("ascii")) for key, value in headers.items()]
    request = httpx.Request(
        "POST",
        parsed,
        headers=raw,
        stream=httpx.ByteStream(content),
        extensions={"timeout": _timeouts(timeout_s)},
    )
    request.read()  # a ByteStream: this only marks the content as known, for the transport
    # Every value above was encoded as ASCII: spares httpx guessing it when aiohttp reads them.
    request.headers.encoding = "ascii"
    return request


class HttpSender:
    """POSTs through one transport and keeps what an attempt needs of the answer."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        max_body_bytes: int = RESPONSE_EXCERPT_MAX_BYTES,
    ) -> WebhookResponse:
        """POST ``content`` and keep at most ``max_body_bytes`` of the answer, all within ``timeout_s``.

        ``timeout_s`` bounds connecting and each read, and also the whole attempt, so a
        receiver trickling bytes cannot hold a delivery slot. Redirects are not followed
        (a 3xx is the answer). Raises :class:`SendFailed` when no answer came.
        """
        try:
            request = build_post(url, content, headers, timeout_s)
            async with asyncio.timeout(timeout_s):
                return await self._exchange(request, max_body_bytes)
        except TimeoutError as exc:
            late = httpx.ReadTimeout(f"no complete answer within {timeout_s:g}s")
            raise SendFailed(describe_error(late, timeout_s)) from exc
        except (httpx.HTTPError, httpx.InvalidURL, aiohttp.ClientError, OSError, ValueError) as exc:
            # aiohttp.ClientError: the transport's response stream lets some through unmapped.
            raise SendFailed(describe_error(exc, timeout_s)) from exc

    async def _exchange(self, request: httpx.Request, max_body_bytes: int) -> WebhookResponse:
        response = await self.transport.handle_async_request(request)
        excerpt = bytearray()
        try:
            # The transport's raw stream, without Response.aiter_raw's re-chunking and bookkeeping.
            stream = response.stream
            if not isinstance(stream, httpx.AsyncByteStream):
                raise TypeError("the transport must answer with an async stream")
            async for chunk in stream:
                excerpt += chunk[: max_body_bytes - len(excerpt)]
                if len(excerpt) >= max_body_bytes:
                    break  # the rest is never read: closing drops the connection
        finally:
            await response.aclose()
        return WebhookResponse(response.status_code, response.headers.get("retry-after"), bytes(excerpt))

    async def aclose(self) -> None:
        """Close the transport and its connection pool."""
        await self.transport.aclose()


@dataclass(frozen=True, slots=True)
class HttpClients:
    """The long-lived senders; pick one with :meth:`for_webhook`."""

    verified: HttpSender
    unverified: HttpSender
    portal: tuple[HttpSender, HttpSender] | None = None
    """The verified and unverified senders of webhooks held to the portal's destination policy,
    when it differs from the admins' (``None``: the two above serve them too)."""

    def for_webhook(self, verify_ssl: bool, *, portal: bool = False) -> HttpSender:
        """Return the sender matching a webhook's ``verify_ssl`` and destination policy
        (``portal``: its URL was set in a project's portal, or a portal's test send)."""
        if portal and self.portal is not None:
            return self.portal[0] if verify_ssl else self.portal[1]
        return self.verified if verify_ssl else self.unverified

    async def aclose(self) -> None:
        """Close every sender and its connection pool."""
        async with contextlib.AsyncExitStack() as closing:  # each one closed, whatever the others do
            for sender in (self.verified, self.unverified, *(self.portal or ())):
                closing.push_async_callback(sender.aclose)


def guarded_transport(
    *,
    verify: ssl.SSLContext | bool,
    allow_private: bool,
    max_connections: int,
    resolver: Resolver | None = None,
    egress: EgressProxy | None = None,
) -> GuardedTransport:
    """The transport of a sender: an aiohttp session behind the private-destination guard.

    No cookies are kept (a receiver's ``Set-Cookie`` must never ride along to another
    subscriber on the same host) and environment proxies are ignored (they would connect
    for us, past the guard): the one proxy is ``egress`` (``HERALD_DELIVERY_PROXY_URL``),
    whose tunnels the connector opens after the guard. ``max_connections`` 0 is unbounded.
    """
    options: dict[str, Any] = {
        "limit": max(max_connections, 0),  # 0 = unbounded; the dispatcher's semaphores bound concurrency
        "limit_per_host": 0,  # per-subscriber bounds live in the dispatcher too
        "ssl": verify,
        "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
    }
    connector: aiohttp.TCPConnector
    if egress is None:
        guard = GuardedResolver(allow_private=allow_private, resolve=resolver)
        connector = aiohttp.TCPConnector(resolver=guard, **options)
    else:
        guard = GuardedResolver(
            allow_private=allow_private, resolve=resolver, proxied=lambda h: not egress.bypasses(h)
        )
        connector = EgressConnector(egress, resolver=guard, **options)
    session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
    return GuardedTransport(AiohttpTransport(verify=verify, client=session), allow_private=allow_private)


def create_http_clients(
    *,
    allow_private: bool,
    max_connections: int,
    resolver: Resolver | None = None,
    portal_allow_private: bool | None = None,
    egress: EgressProxy | None = None,
) -> HttpClients:
    """Create the verified and unverified senders; call from inside the running loop.

    With ``allow_private`` false, connections to loopback/private/link-local addresses are
    refused, checked on the addresses actually connected to. ``portal_allow_private`` is the
    policy of the webhooks held to the portal's (``None``: the same). ``resolver`` replaces
    system name resolution (tests). ``egress``: the proxy every request goes through, bar
    the destinations it bypasses (``None``: each connects directly).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("create_http_clients() must run inside the event loop (the lifespan)") from None

    verify_context = httpx.create_ssl_context(verify=True)

    def sender(verify: ssl.SSLContext | bool, private: bool) -> HttpSender:
        transport = guarded_transport(
            verify=verify,
            allow_private=private,
            max_connections=max_connections,
            resolver=resolver,
            egress=egress,
        )
        return HttpSender(transport)

    portal = None
    if portal_allow_private is not None and portal_allow_private != allow_private:
        portal = (sender(verify_context, portal_allow_private), sender(False, portal_allow_private))
    return HttpClients(
        verified=sender(verify_context, allow_private), unverified=sender(False, allow_private), portal=portal
    )
