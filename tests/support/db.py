"""Reading what Herald wrote, and waiting for the database to agree."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

FAST: dict[str, Any] = {
    "dispatcher_enabled": True,
    "poll_interval_seconds": 0.05,
    "retry_schedule": "100ms,200ms",
    "lease_seconds": 5,
    "delivery_timeout_seconds": 2,
    "shutdown_grace_seconds": 1,
}
"""Settings that make the delivery tests quick: short poll, short retry schedule."""


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, interval_s: float = 0.02
) -> None:
    """Wait until ``check()`` is true; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(interval_s)


async def statuses(db: asyncpg.Connection, subscriber_uuid: str | None = None) -> dict[str, int]:
    """Count deliveries per status (of one subscriber, if given; webhooks only)."""
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE subscriber_kind = 'webhook' "
        "AND ($1::uuid IS NULL OR subscriber_uuid = $1::uuid) GROUP BY status",
        subscriber_uuid,
    )
    return {row["status"]: row["n"] for row in rows}


async def wait_for_statuses(
    db: asyncpg.Connection,
    expected: dict[str, int],
    subscriber_uuid: str | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Wait until the deliveries (of one subscriber) have exactly these status counts."""
    seen: dict[str, int] = {}

    async def check() -> bool:
        nonlocal seen
        seen = await statuses(db, subscriber_uuid)
        return seen == expected

    try:
        await eventually(check, timeout_s=timeout_s)
    except TimeoutError:
        raise AssertionError(f"deliveries are {seen}, expected {expected}") from None


async def delivery_of(db: asyncpg.Connection, event_uuid: str, subscriber_uuid: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT * FROM deliveries WHERE event_uuid = $1::uuid AND subscriber_uuid = $2::uuid",
        event_uuid,
        subscriber_uuid,
    )
    assert row is not None
    return row


async def attempts_of(db: asyncpg.Connection, delivery_uuid: Any) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM delivery_attempts WHERE delivery_uuid = $1 ORDER BY number, started_at",
            delivery_uuid,
        )
    )


async def subscriber_row(db: asyncpg.Connection, subscriber_uuid: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM subscribers WHERE uuid = $1::uuid", subscriber_uuid)
    assert row is not None
    return row
