"""Stub name resolvers: tests never ask real DNS."""

from __future__ import annotations

import asyncio
import socket

from service.common.destinations import Resolver


def stub_resolver(table: dict[str, list[str]]) -> Resolver:
    """Resolve from ``table``; an unknown name fails like a real NXDOMAIN."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


async def hanging_resolver(host: str, port: int) -> list[str]:
    """A resolver that never answers (within a test)."""
    await asyncio.sleep(60)
    return []
