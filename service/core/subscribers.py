"""Subscriber life cycle shared by the API and the dispatcher."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SUBSCRIBER_DISABLED = "subscriber disabled"

_DISABLE_SQL = text(
    """
UPDATE subscribers
SET enabled = false, disabled_reason = :reason, updated_at = now()
WHERE uuid = :uuid AND kind = 'webhook'
"""
)

# Pending (and retry-waiting) deliveries of a disabled subscriber end 'failed'; they can be
# recovered once it is enabled again. In-flight ones finish and are judged by their outcome.
_FAIL_PENDING_SQL = text(
    """
UPDATE deliveries
SET status = 'failed', last_error = :error, next_attempt_at = NULL, updated_at = now()
WHERE subscriber_uuid = :uuid AND status = 'pending'
"""
)


async def disable_subscriber(session: AsyncSession, subscriber_uuid: UUID, reason: str) -> None:
    """Disable a webhook subscriber with ``reason`` and fail its pending deliveries; never commits."""
    await session.execute(_DISABLE_SQL, {"uuid": subscriber_uuid, "reason": reason})
    await fail_pending_deliveries(session, subscriber_uuid)


async def fail_pending_deliveries(session: AsyncSession, subscriber_uuid: UUID) -> None:
    """Mark the subscriber's pending deliveries ``failed`` with reason ``subscriber disabled``."""
    await session.execute(_FAIL_PENDING_SQL, {"uuid": subscriber_uuid, "error": SUBSCRIBER_DISABLED})
