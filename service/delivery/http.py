"""The shared outbound HTTP clients: httpx on the aiohttp transport, guarded against private destinations.

Stock httpx spends most of its time in httpcore's pool bookkeeping (~380 POST/s against
~4,100 on the ``httpx-aiohttp`` transport, encode/httpcore#1035), so every webhook goes
through one long-lived ``httpx.AsyncClient`` whose transport is an aiohttp session.
TLS verification is a property of the transport, hence two clients: ``verified`` and
``unverified`` (webhooks with ``verify_ssl: false``). Both are created in the lifespan,
inside the running event loop, never at import time.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from service.common.destinations import DestinationRefused, Resolver, check_literal_host
from service.delivery.ssrf import GuardedResolver

RESPONSE_EXCERPT_MAX_BYTES = 4096
KEEPALIVE_TIMEOUT_S = 15.0


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Refuses literal private addresses (aiohttp skips the resolver for them) and keeps
    every failure an ``httpx.TransportError``, with aiohttp's original as ``__cause__``."""

    def __init__(self, inner: AiohttpTransport, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._allow_private:
            try:
                check_literal_host(str(request.url), allow_private=False)
            except DestinationRefused as exc:
                raise httpx.ConnectError(exc.strerror or "destination refused", request=request) from exc
        try:
            response: httpx.Response = await self._inner.handle_async_request(request)
        except TimeoutError as exc:
            # aiohttp lets a resolver timeout escape unwrapped.
            raise httpx.ConnectTimeout("timed out resolving the destination", request=request) from exc
        except aiohttp.ClientError as exc:
            # Errors the transport does not map (e.g. a malformed answer). aiohttp's
            # message can quote the full URL, so it is not copied.
            raise httpx.RemoteProtocolError("invalid response from receiver", request=request) from exc
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True, slots=True)
class HttpClients:
    """The two long-lived webhook clients; pick one with :meth:`for_webhook`."""

    verified: httpx.AsyncClient
    unverified: httpx.AsyncClient

    def for_webhook(self, verify_ssl: bool) -> httpx.AsyncClient:
        """Return the client matching a webhook's ``verify_ssl``."""
        return self.verified if verify_ssl else self.unverified

    async def aclose(self) -> None:
        """Close both clients and their connection pools."""
        try:
            await self.verified.aclose()
        finally:
            await self.unverified.aclose()


class WebhookClient(httpx.AsyncClient):
    """The httpx client of the webhooks, keeping a handle on the aiohttp session under it.

    :func:`post_webhook` sends on that session directly: same pool, resolver guard, TLS and
    cookie policy, but without ``httpx.AsyncClient``'s per-request machinery (URL and header
    models, cookie extraction, auth and redirect hooks), which costs twice the CPU of the
    request itself: measured at 64 in flight on loopback, ~410-450 us of CPU per POST through
    ``AsyncClient``, ~200-250 us through the transport alone, ~130-150 us on the session.
    """

    def __init__(self, *, session: aiohttp.ClientSession, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.allow_private = allow_private


def _no_cookies() -> CookieJar:
    # A receiver's Set-Cookie must never ride along to another subscriber on the same host.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _client(
    *,
    verify: ssl.SSLContext | bool,
    allow_private: bool,
    timeout_s: float,
    max_connections: int,
    resolver: Resolver | None,
) -> httpx.AsyncClient:
    connector = aiohttp.TCPConnector(
        limit=max(max_connections, 0),  # 0 = unbounded; the dispatcher's semaphores bound concurrency
        limit_per_host=0,  # per-subscriber bounds live in the dispatcher too
        resolver=GuardedResolver(allow_private=allow_private, resolve=resolver),
        ssl=verify,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,  # environment proxies would connect for us, past the guard
    )
    transport = AiohttpTransport(verify=verify, client=session)
    return WebhookClient(
        session=session,
        allow_private=allow_private,
        transport=_GuardedTransport(transport, allow_private=allow_private),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        cookies=_no_cookies(),
        # Compressed answers could inflate far past the excerpt we keep.
        headers={"accept-encoding": "identity"},
    )


def create_http_clients(
    *, allow_private: bool, timeout_s: float, max_connections: int, resolver: Resolver | None = None
) -> HttpClients:
    """Create the verified and unverified webhook clients; call from inside the running loop.

    ``timeout_s`` bounds connecting and each read of an attempt; redirects are never
    followed (a 3xx is a failed attempt). With ``allow_private`` false, connections to
    loopback/private/link-local addresses are refused, checked on the addresses actually
    connected to. ``resolver`` replaces system name resolution (tests).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("create_http_clients() must run inside the event loop (the lifespan)") from None

    def client(verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
        return _client(
            verify=verify,
            allow_private=allow_private,
            timeout_s=timeout_s,
            max_connections=max_connections,
            resolver=resolver,
        )

    return HttpClients(verified=client(httpx.create_ssl_context(verify=True)), unverified=client(False))


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What an attempt keeps of the receiver's answer."""

    status_code: int
    retry_after: str | None
    body_excerpt: bytes


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    max_body_bytes: int = RESPONSE_EXCERPT_MAX_BYTES,
) -> WebhookResponse:
    """POST ``content`` and keep at most ``max_body_bytes`` of the answer, all within ``timeout_s``.

    The client's own timeouts apply per connect/read; this adds a deadline for the whole
    attempt so a receiver trickling bytes cannot hold a delivery slot. Raises
    ``httpx.HTTPError`` subclasses (``describe_error`` turns them into a reason).
    """
    if isinstance(client, WebhookClient):
        return await _post_on_session(
            client, url, content=content, headers=headers, timeout_s=timeout_s, max_body_bytes=max_body_bytes
        )
    excerpt = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, content=content, headers=dict(headers)) as response:
                async for chunk in response.aiter_raw():
                    excerpt += chunk[: max_body_bytes - len(excerpt)]
                    if len(excerpt) >= max_body_bytes:
                        break
    except TimeoutError as exc:
        raise httpx.ReadTimeout(f"no complete answer within {timeout_s:g}s") from exc
    return WebhookResponse(
        status_code=response.status_code,
        retry_after=response.headers.get("retry-after"),
        body_excerpt=bytes(excerpt),
    )


async def _post_on_session(
    client: WebhookClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    max_body_bytes: int,
) -> WebhookResponse:
    """:func:`post_webhook` on the aiohttp session: same checks, same errors (httpx classes, the
    aiohttp original as ``__cause__`` for ``describe_error``)."""
    if not client.allow_private:
        try:
            check_literal_host(url, allow_private=False)
        except DestinationRefused as exc:
            raise httpx.ConnectError(exc.strerror or "destination refused") from exc
    excerpt = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.session.post(
                url,
                data=content,
                headers={"accept-encoding": "identity", **headers},
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeout_s, sock_read=timeout_s),
            ) as response:
                async for chunk in response.content.iter_chunked(16384):
                    excerpt += chunk[: max_body_bytes - len(excerpt)]
                    if len(excerpt) >= max_body_bytes:
                        break
                return WebhookResponse(response.status, response.headers.get("retry-after"), bytes(excerpt))
    except TimeoutError as exc:
        raise httpx.ReadTimeout(f"no complete answer within {timeout_s:g}s") from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError("could not connect") from exc
    except aiohttp.ClientError as exc:
        # aiohttp's message can quote the full URL, so it is not copied.
        raise httpx.RemoteProtocolError("invalid response from receiver") from exc
