"""Making finished deliveries due again on request: ``redeliver`` (one) and ``recover`` (a window).

Both keep the attempt count and history, so ``herald-attempt`` keeps counting. A delivery
that already used every attempt of the schedule gets exactly one more: the retry decision
treats any attempt number past the schedule as the last (``service.delivery.retry.decide``),
so a failed redelivery is ``failed`` again at once rather than starting the schedule over.

Lock order is the outcome writer's (subscriber row, then delivery rows), so a concurrent
disable either sees the requeued rows (and fails them) or is seen (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.delivery.claims import NOTIFY_SQL
from service.errors import Conflict, NotFound
from service.schemas.deliveries import delivery_columns

_DELIVERY_SQL = text("SELECT status, subscriber_uuid FROM deliveries WHERE uuid = :uuid")
_SUBSCRIBER_SQL = text("SELECT kind, enabled FROM subscribers WHERE uuid = :uuid FOR SHARE")

_REDELIVER_SQL = text(
    f"""
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), lease_expires_at = NULL, lease_token = NULL,
    updated_at = now()
WHERE uuid = :uuid AND status NOT IN ('delivering', 'cancelled')
RETURNING {delivery_columns()}
"""  # noqa: S608  (a constant column list)
)

_RECOVER_SQL = text(
    """
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), updated_at = now()
WHERE subscriber_uuid = :uuid AND status = 'failed'
  AND created_at >= :since AND (CAST(:until AS timestamptz) IS NULL OR created_at < :until)
"""
)


async def redeliver(session: AsyncSession, delivery_uuid: UUID, *, telemetry_enabled: bool) -> Any:
    """Make one delivery due now, whatever its status but ``delivering`` or ``cancelled``; never commits.

    Returns the updated row (``delivery_columns()``). ``NotFound`` for an unknown uuid,
    ``Conflict`` when it is in flight, cancelled, or its subscriber is disabled or gone (the
    analytics subscriber counts as disabled while telemetry is off).
    """
    delivery = (await session.execute(_DELIVERY_SQL, {"uuid": delivery_uuid})).one_or_none()
    if delivery is None:
        raise NotFound(f"delivery {delivery_uuid} not found")
    subscriber = (await session.execute(_SUBSCRIBER_SQL, {"uuid": delivery.subscriber_uuid})).one_or_none()
    if subscriber is None:
        raise Conflict("the delivery's subscriber was deleted")
    if subscriber.kind == "analytics" and not telemetry_enabled:
        raise Conflict("telemetry is off: the analytics subscriber is disabled")
    if not subscriber.enabled:
        raise Conflict("the delivery's subscriber is disabled; enable it first")
    row = (await session.execute(_REDELIVER_SQL, {"uuid": delivery_uuid})).one_or_none()
    if row is None:
        status = (await session.execute(_DELIVERY_SQL, {"uuid": delivery_uuid})).one().status
        if status == "delivering":
            raise Conflict("the delivery is being attempted right now")
        raise Conflict(f"the delivery is {status}")
    await session.execute(NOTIFY_SQL)
    return row


async def recover(
    session: AsyncSession, subscriber_uuid: UUID, since: datetime, until: datetime | None
) -> int:
    """Make every ``failed`` delivery of a webhook created in ``[since, until)`` due now; never commits.

    Returns how many. ``NotFound`` for an unknown subscriber, ``Conflict`` for the analytics
    subscriber or a disabled one.
    """
    subscriber = (await session.execute(_SUBSCRIBER_SQL, {"uuid": subscriber_uuid})).one_or_none()
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_uuid} not found")
    if subscriber.kind != "webhook":
        raise Conflict("the analytics subscriber cannot be recovered")
    if not subscriber.enabled:
        raise Conflict("the subscriber is disabled; enable it first")
    result = await session.execute(_RECOVER_SQL, {"uuid": subscriber_uuid, "since": since, "until": until})
    scheduled = int(result.rowcount)  # type: ignore[attr-defined]
    if scheduled:
        await session.execute(NOTIFY_SQL)
    return scheduled
