"""Back to the queue: expired leases, hand back on stop, redeliver (one) and recover (a window).

A row released or handed back is ``pending`` and due now only while its subscriber can take it;
otherwise it settles as the subscriber's own change would have settled it (disabled: ``failed``,
deleted: ``cancelled``). No attempt is counted for it: none was recorded.

Redeliver and recover keep the attempt count and history, so ``herald-attempt`` keeps counting. A
delivery that already used every attempt of the schedule gets exactly one more: the retry decision
treats any attempt number past the schedule as the last, so a failed redelivery is ``failed`` again
at once rather than starting the schedule over. Their lock order is the outcome writer's
(subscriber row, then delivery rows), so a concurrent disable either sees the requeued rows (and
fails them) or is seen (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.errors import Conflict, NotFound
from service.models.deliveries import DeliveryStatus
from service.models.subscribers import SubscriberKind
from service.outbox import queries
from service.outbox.claims import Leased

EXPIRED_BATCH_ROWS = 1000


async def release_expired(engine: AsyncEngine, *, limit: int = EXPIRED_BATCH_ROWS) -> int:
    """Put deliveries whose lease expired (their process died) back in the queue, due now.

    Released rather than claimed directly, so they go through the same per-subscriber bounds
    as every other due row. Returns how many were released.
    """
    async with engine.begin() as conn:
        return len((await conn.execute(queries.RELEASE_EXPIRED, {"limit": limit})).all())


async def hand_back(engine: AsyncEngine, claimed: Sequence[Leased]) -> int:
    """Return unfinished deliveries to the queue (due now, lease cleared) when a dispatcher stops.

    Only rows still held under the same lease change; returns how many did. Other replicas
    are woken, since they may take them over at once.
    """
    if not claimed:
        return 0
    params = {
        "uuids": [c.uuid for c in claimed],
        "tokens": [c.lease_token for c in claimed],
        "subscribers": [c.subscriber_uuid for c in claimed],
    }
    async with engine.begin() as conn:
        count = len((await conn.execute(queries.HAND_BACK, params)).all())
        await conn.execute(queries.NOTIFY)
    return count


async def redeliver(session: AsyncSession, delivery_uuid: UUID, *, telemetry_enabled: bool) -> Any:
    """Make one delivery due now, whatever its status but ``delivering`` or ``cancelled``; never commits.

    Returns the updated row (``delivery_columns()``). ``NotFound`` for an unknown uuid,
    ``Conflict`` when it is in flight, cancelled, or its subscriber is disabled or gone (the
    analytics subscriber counts as disabled while telemetry is off).
    """
    delivery = (await session.execute(queries.DELIVERY_STATE, {"uuid": delivery_uuid})).one_or_none()
    if delivery is None:
        raise NotFound(f"delivery {delivery_uuid} not found")
    subscriber = (
        await session.execute(queries.SUBSCRIBER_STATE, {"uuid": delivery.subscriber_uuid})
    ).one_or_none()
    if subscriber is None:
        raise Conflict("the delivery's subscriber was deleted")
    if subscriber.kind == SubscriberKind.ANALYTICS and not telemetry_enabled:
        raise Conflict("telemetry is off: the analytics subscriber is disabled")
    if not subscriber.enabled:
        raise Conflict("the delivery's subscriber is disabled; enable it first")
    row = (await session.execute(queries.REDELIVER, {"uuid": delivery_uuid})).one_or_none()
    if row is None:
        status = (await session.execute(queries.DELIVERY_STATE, {"uuid": delivery_uuid})).one().status
        if status == DeliveryStatus.DELIVERING:
            raise Conflict("the delivery is being attempted right now")
        raise Conflict(f"the delivery is {status}")
    await session.execute(queries.NOTIFY)
    return row


async def recover(
    session: AsyncSession, subscriber_uuid: UUID, since: datetime, until: datetime | None
) -> int:
    """Make every ``failed`` delivery of a webhook created in ``[since, until)`` due now; never commits.

    Returns how many. ``NotFound`` for an unknown subscriber, ``Conflict`` for the analytics
    subscriber or a disabled one.
    """
    subscriber = (await session.execute(queries.SUBSCRIBER_STATE, {"uuid": subscriber_uuid})).one_or_none()
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_uuid} not found")
    if subscriber.kind != SubscriberKind.WEBHOOK:
        raise Conflict("the analytics subscriber cannot be recovered")
    if not subscriber.enabled:
        raise Conflict("the subscriber is disabled; enable it first")
    params = {"uuid": subscriber_uuid, "since": since, "until": until}
    scheduled = int((await session.execute(queries.RECOVER, params)).rowcount)  # type: ignore[attr-defined]
    if scheduled:
        await session.execute(queries.NOTIFY)
    return scheduled
