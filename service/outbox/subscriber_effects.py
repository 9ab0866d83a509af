"""What a subscriber's change does to its deliveries: disabled → ``failed``, deleted → ``cancelled``.

Changing or removing a webhook's rate limit returns the rows it parked to the claim's walk.
Disabling a webhook fails its waiting deliveries (``pending``, retries included) with the
reason ``subscriber disabled``; they can be recovered once it is enabled again. Deleting one
cancels its unfinished deliveries (``pending`` and ``delivering``): ``subscriber deleted``; they
stay listable. Turning telemetry off cancels the analytics deliveries not sent yet: ``telemetry
disabled``. (The reasons are :class:`~service.outbox.states.Reason` values.) These run in the
transaction that changes the subscriber and never commit.

An ingest that matched a subscriber just before it was disabled or deleted can commit rows after
that transaction; claims skip such rows (only enabled subscribers are joined), so
:func:`settle_orphans` sweeps them to the outcome the subscriber's change would have given.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from sqlalchemy import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.outbox import queries


async def fail_pending(session: AsyncSession, subscriber_uuid: UUID) -> None:
    """Mark the subscriber's pending deliveries ``failed`` (``subscriber disabled``); in-flight ones
    finish and are judged by their outcome."""
    await session.execute(queries.FAIL_PENDING, {"uuid": subscriber_uuid})


async def cancel_unfinished(session: AsyncSession, subscriber_uuid: UUID) -> None:
    """Mark the subscriber's pending and in-flight deliveries ``cancelled`` (``subscriber deleted``).

    The lease is cleared, so a late completion of an attempt in flight changes nothing.
    """
    await session.execute(queries.CANCEL_UNFINISHED, {"uuid": subscriber_uuid})


async def unpark(session: AsyncSession, subscriber_uuid: UUID) -> None:
    """Return the webhook's rows parked by its rate limit to the claim's walk (the limit changed
    or went): the next claim parks them again under the new limit, or claims them."""
    for statement in queries.UNPARK_SUBSCRIBER:
        await session.execute(statement, {"uuid": subscriber_uuid})


async def cancel_telemetry(session: AsyncSession) -> int:
    """Cancel every analytics delivery not sent yet (telemetry was turned off); returns how many.

    Rows another process is sending right now are cancelled too: its completion, guarded by
    the lease, then changes nothing.
    """
    result = cast(CursorResult[Any], await session.execute(queries.CANCEL_TELEMETRY))
    return result.rowcount


async def settle_orphans(engine: AsyncEngine) -> int:
    """Settle pending deliveries of deleted (``cancelled``) or disabled (``failed``) subscribers.

    Returns how many changed. The dispatcher runs it at start and then periodically.
    """
    async with engine.begin() as conn:
        return len((await conn.execute(queries.SETTLE_ORPHANS)).all())
