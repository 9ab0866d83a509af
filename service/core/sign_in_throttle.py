"""The sign-in throttle of the console: failed sign-ins counted per client address and minute.

The counts live in the database (``console_sign_ins``), not in the process: every replica behind
a load balancer sees the same count, a restart does not reset it, and the table stays small (one
row per address and minute with a failure, rows older than the window removed as new failures
come). Functions add to the caller's session and never commit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_FAILURES = 10
"""Failed sign-ins one address may make within ``WINDOW_MINUTES``; the next attempt is refused."""
WINDOW_MINUTES = 10

_COUNT_SQL = text(
    """
SELECT coalesce(sum(failures), 0) FROM console_sign_ins
WHERE client = :client AND minute > now() - make_interval(mins => :window)
"""
)
_RECORD_SQL = text(
    """
INSERT INTO console_sign_ins (client, minute, failures)
VALUES (:client, date_trunc('minute', now()), 1)
ON CONFLICT (client, minute) DO UPDATE SET failures = console_sign_ins.failures + 1
"""
)
_FORGET_SQL = text("DELETE FROM console_sign_ins WHERE minute <= now() - make_interval(mins => :window)")
_CLEAR_SQL = text("DELETE FROM console_sign_ins WHERE client = :client")


async def throttled(session: AsyncSession, client: str) -> bool:
    """Whether ``client`` made ``MAX_FAILURES`` failed sign-ins within the window."""
    params = {"client": client, "window": WINDOW_MINUTES}
    count = (await session.execute(_COUNT_SQL, params)).scalar_one()
    return int(count) >= MAX_FAILURES


async def record_failure(session: AsyncSession, client: str) -> None:
    """Count one failed sign-in of ``client`` (and forget the failures older than the window)."""
    await session.execute(_FORGET_SQL, {"window": WINDOW_MINUTES + 1})
    await session.execute(_RECORD_SQL, {"client": client})


async def clear(session: AsyncSession, client: str) -> None:
    """A successful sign-in: ``client``'s failures no longer count."""
    await session.execute(_CLEAR_SQL, {"client": client})
