"""The private-destination guard at delivery time, on aiohttp's resolver hook.

The policy (what is private, the reasons) is :mod:`service.common.destinations`.
:class:`GuardedResolver` filters the addresses of the name about to be connected to, so a
name re-pointed at a private address after creation (DNS rebinding) is refused; literal
addresses, which aiohttp connects to without asking a resolver, are checked by the HTTP
client with :func:`~service.common.destinations.check_literal_host`.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from service.common.destinations import (
    DestinationRefused,
    Resolver,
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
    """

    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None) -> None:
        self._allow_private = allow_private
        self._resolve = resolve or system_resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the allowed addresses of ``host``; ``DestinationRefused`` if none is."""
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
