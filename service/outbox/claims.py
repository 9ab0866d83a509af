"""Claims: ``pending`` → ``delivering`` under a lease.

A claim takes due rows, sets ``lease_expires_at`` and a fresh ``lease_token`` naming this claim,
and returns them. Every later write of the claimant (complete, hand back) is guarded by
``status = 'delivering' AND lease_token = <token>``, so a late write from an expired lease, or
about a delivery cancelled meanwhile, changes nothing. Rows are picked with ``FOR UPDATE SKIP
LOCKED``: several dispatchers (replicas) share one queue without taking the same row twice.
Disabled and deleted subscribers are never claimed for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox import queries

RowT = TypeVar("RowT")


class Leased(Protocol):
    """A delivery held under a lease: which row, which claim, which subscriber."""

    @property
    def uuid(self) -> UUID: ...
    @property
    def lease_token(self) -> UUID: ...
    @property
    def subscriber_uuid(self) -> UUID: ...


@dataclass(frozen=True, slots=True)
class Claim(Generic[RowT]):
    """What one claim took: the lease token every row now carries, and the rows."""

    lease_token: UUID
    rows: Sequence[RowT]


async def claim_webhooks(
    conn: asyncpg.Connection,
    *,
    limit: int,
    per_subscriber: int,
    busy: Mapping[UUID, int],
    lease_s: float,
) -> Claim[asyncpg.Record]:
    """Claim at most ``limit`` due webhook deliveries, oldest first, in one autocommit statement.

    ``conn`` is a plain asyncpg connection outside any transaction (the dispatcher's own: this
    is the hot path). ``busy`` counts the caller's deliveries in flight per subscriber: a
    subscriber gets at most ``per_subscriber - busy`` rows. Each row carries the delivery
    (``uuid``, ``event_uuid``, ``event_type``, ``subscriber_uuid``, ``payload`` as JSON text,
    ``attempts_count``) and its webhook as it is now (``name``, ``url``, ``secret``,
    ``previous_secret``, ``previous_valid``, ``verify_ssl``, ``content_type``, ``format``).
    """
    token = uuid4()
    if limit <= 0:
        return Claim(token, [])
    rows = await conn.fetch(
        queries.CLAIM_WEBHOOKS, list(busy), list(busy.values()), per_subscriber, limit, token, lease_s
    )
    return Claim(token, rows)


async def claim_kind(engine: AsyncEngine, kind: str, *, limit: int, lease_s: float) -> Claim[Row[Any]]:
    """Claim at most ``limit`` due deliveries of enabled subscribers of ``kind``, oldest first.

    For batch deliverers (the analytics kind). Rows carry ``uuid``, ``event_uuid``,
    ``event_type``, ``subscriber_uuid``, ``payload`` (JSON text) and ``attempts_count``.
    """
    token = uuid4()
    if limit <= 0:
        return Claim(token, [])
    async with engine.begin() as conn:
        params = {"kind": kind, "limit": limit, "token": token, "lease_s": lease_s}
        rows = (await conn.execute(queries.CLAIM_KIND, params)).all()
    return Claim(token, rows)
