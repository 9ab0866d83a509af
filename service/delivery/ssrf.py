"""The private-destination guard at delivery time, on the HTTP stack (aiohttp under httpx).

The policy (what is private, the reasons) is :mod:`service.common.destinations`; this module
applies it where the connections are made, twice, both skipped when private destinations
are allowed:

- :class:`GuardedResolver`, aiohttp's resolver hook, filters the addresses of the name about
  to be connected to, so a name re-pointed at a private address after creation (DNS
  rebinding) is refused;
- :class:`GuardedTransport`, around the ``httpx-aiohttp`` transport, refuses literal
  addresses, which aiohttp connects to without asking a resolver, and keeps every failure
  an ``httpx.TransportError`` with aiohttp's original as ``__cause__``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from service.common.destinations import (
    DestinationRefused,
    Resolver,
    check_literal_host,
    is_forbidden_address,
    is_localhost_name,
    literal_address,
    resolved_refusal,
    system_resolve,
)

_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that drops forbidden addresses, and refuses a name left with none.

    The check is on the addresses the connector is about to connect to, which is what
    defeats DNS rebinding; aiohttp's DNS cache keeps these filtered results only.

    ``proxied`` tells which hosts the egress proxy connects to. With private destinations
    allowed their names are left to the proxy to resolve; otherwise they are resolved and
    checked here like any other, and the proxy is given the checked address
    (:mod:`service.delivery.egress`).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver | None = None,
        proxied: Callable[[str], bool] | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve or system_resolve
        self._proxied = proxied

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the allowed addresses of ``host``; ``DestinationRefused`` if none is."""
        if self._allow_private and self._proxied is not None and self._proxied(host):
            return [ResolveResult(hostname=host, host=host, port=port, family=family, proto=0, flags=0)]
        if not self._allow_private and is_localhost_name(host):
            raise DestinationRefused(f"destination {host} is a loopback address, refused")
        results: list[ResolveResult] = []
        refused: list[str] = []
        for text in await self._resolve(host, port):
            address = literal_address(text)
            if address is None:
                continue
            addr_family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            if family not in (socket.AF_UNSPEC, addr_family):
                continue
            if not self._allow_private and is_forbidden_address(address):
                refused.append(text)
                continue
            results.append(
                ResolveResult(
                    hostname=host, host=text, port=port, family=addr_family, proto=0, flags=_NUMERIC_FLAGS
                )
            )
        if not results and refused:
            raise DestinationRefused(resolved_refusal(host, refused))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no usable address")
        return results

    async def close(self) -> None:
        """Nothing to release: resolution goes through the event loop or the injected resolver."""


class GuardedTransport(httpx.AsyncBaseTransport):
    """The ``httpx-aiohttp`` transport, refusing literal private addresses before it connects.

    aiohttp skips the resolver (hence :class:`GuardedResolver`) for literal addresses, so
    they are checked here. Every failure leaves as an ``httpx.TransportError`` with
    aiohttp's original as ``__cause__``.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the inner transport unless its host is a literal private address."""
        if not self._allow_private:
            try:
                check_literal_host(str(request.url), allow_private=False)
            except DestinationRefused as exc:
                raise httpx.ConnectError(exc.strerror or "destination refused", request=request) from exc
        try:
            return await self._inner.handle_async_request(request)
        except TimeoutError as exc:
            # aiohttp lets a resolver timeout escape unwrapped.
            raise httpx.ConnectTimeout("timed out resolving the destination", request=request) from exc
        except aiohttp.ClientError as exc:
            # Errors the transport does not map (e.g. a malformed answer). aiohttp's
            # message can quote the full URL, so it is not copied.
            raise httpx.RemoteProtocolError("invalid response from receiver", request=request) from exc

    async def aclose(self) -> None:
        """Close the inner transport (and its connection pool)."""
        await self._inner.aclose()
