"""Claims: ``pending`` → ``delivering`` under a lease.

A claim takes due rows, sets ``lease_expires_at`` and a fresh ``lease_token`` naming this claim,
and returns them. Every later write of the claimant (complete, hand back) is guarded by
``status = 'delivering' AND lease_token = <token>``, so a late write from an expired lease, or
about a delivery cancelled meanwhile, changes nothing. Rows are picked with ``FOR UPDATE SKIP
LOCKED``: several dispatchers (replicas) share one queue without taking the same row twice.
Disabled and deleted subscribers are never claimed for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    wake_at: datetime | None = None
    """When a webhook left out because it is paused or rate-limited opens again (the earliest)."""
    others_live: bool = True
    """Whether another live dispatcher has published its counts (the next claim must serialize)."""


async def claim_webhooks(
    conn: asyncpg.Connection,
    *,
    dispatcher: UUID,
    limit: int,
    per_subscriber: int,
    busy: Mapping[UUID, int],
    lease_s: float,
    serialize: bool = True,
    windows: Mapping[UUID, int] | None = None,
    default_window: int | None = None,
) -> Claim[asyncpg.Record]:
    """Claim at most ``limit`` due webhook deliveries under the delivery controls, going round
    the webhooks with due work (the one with fewest in flight first, then the oldest rows).

    ``conn`` is a plain asyncpg connection outside any transaction (the dispatcher's own: this
    is the hot path). ``busy`` counts the deliveries in flight of the calling ``dispatcher`` per
    subscriber; the other live dispatchers' published counts are subtracted too, so a subscriber
    gets at most ``per_subscriber`` in flight across all of them. The claim publishes the
    caller's counts after it, skips paused webhooks, holds rate-limited ones to their rate and
    ordered ones to their oldest unfinished deliveries, in order (docs/delivery.md, "Delivery
    controls"), leaves out webhooks whose circuit is not closed and takes the probes that are
    due. ``windows`` caps what this dispatcher may have in flight per subscriber
    (``default_window`` for one not in it; both default to ``per_subscriber``).
    With ``serialize`` the claim takes an advisory lock first, in a transaction, so claims run one
    at a time across replicas and each sees what the previous one took; a dispatcher that is the
    only live one (the last claim's ``others_live`` was false) may leave it out.

    Each row carries the delivery (``uuid``, ``event_uuid``, ``event_type``, ``subscriber_uuid``,
    ``payload`` as JSON text, ``attempts_count``) and its webhook as it is now (``name``, ``url``,
    ``secret``, ``previous_secret``, ``previous_valid``, ``verify_ssl``, ``content_type``,
    ``format``, ``ordered``, ``rate_limit_per_minute``, ``headers``, ``url_from_portal``), ``seq``
    (the recording order) and ``probe`` (it is its webhook's circuit probe).
    """
    token = uuid4()
    if limit <= 0:
        return Claim(token, [])
    caps = windows or {}
    window = per_subscriber if default_window is None else default_window
    params = (
        *(list(busy), list(busy.values()), per_subscriber, limit, token, lease_s, dispatcher),
        *(list(caps), list(caps.values()), window),
    )
    if not serialize:
        rows = await conn.fetch(queries.CLAIM_WEBHOOKS, *params)
    else:
        # BEGIN and the lock in one round trip (the simple protocol takes both statements).
        await conn.execute(queries.BEGIN_AND_LOCK_CLAIMS)
        try:
            rows = await conn.fetch(queries.CLAIM_WEBHOOKS, *params)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
    first = rows[0]  # the statement always returns a row
    claimed = [row for row in rows if row["uuid"] is not None]
    return Claim(token, claimed, first["wake_at"], first["others_live"])


async def publish_in_flight(
    conn: asyncpg.Connection, *, dispatcher: UUID, busy: Mapping[UUID, int], lease_s: float
) -> bool:
    """Publish ``dispatcher``'s in-flight counts without claiming (it has no free slot, or it is
    starting), for two more leases: they bound the other dispatchers' claims. Returns whether
    another live dispatcher has published counts."""
    others: bool = await conn.fetchval(
        queries.PUBLISH_INFLIGHT, list(busy), list(busy.values()), dispatcher, lease_s
    )
    return others


async def withdraw_in_flight(engine: AsyncEngine, dispatcher: UUID) -> None:
    """Remove ``dispatcher``'s published counts (it stopped; nothing of it is in flight)."""
    async with engine.begin() as conn:
        await conn.execute(queries.WITHDRAW_INFLIGHT, {"dispatcher": dispatcher})


async def sweep_expired_controls(engine: AsyncEngine) -> None:
    """Delete the published counts of dispatchers that are gone and the rate slots in the past."""
    async with engine.begin() as conn:
        for statement in queries.SWEEP_EXPIRED_CONTROLS:
            await conn.execute(statement)


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
