"""Reading the outbox: the delivery log (filtered, newest first), one delivery with its attempts,
and deliveries by outcome per hour.

Every query here runs on an index of ``deliveries`` (by ``seq``, by subscriber and ``seq``, by
status and ``seq``, by ``created_at``), so its cost follows the page, not the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from service.errors import NotFound
from service.models.deliveries import Delivery, DeliveryAttempt, DeliveryStatus
from service.schemas.deliveries import delivery_columns

# The columns of a delivery object (the same list ``delivery_columns()`` gives raw SQL).
_TABLE = SQLModel.metadata.tables[Delivery.__tablename__]
_ATTEMPTS = SQLModel.metadata.tables[DeliveryAttempt.__tablename__]
_COLUMNS = [_TABLE.c[name.strip()] for name in delivery_columns().split(",")]
_SEQ = _TABLE.c.seq

_ATTEMPTS_SQL = text(
    "SELECT number, started_at, duration_ms, status_code, error, response_body "
    "FROM delivery_attempts WHERE delivery_uuid = :uuid ORDER BY number, id"
)


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries a log shows; ``None`` fields do not filter.

    ``subscriber_uuids`` restricts the log to a set of subscribers (a scope narrower than
    everything); ``status_code`` keeps deliveries with an attempt answered with that code;
    ``since`` (inclusive) and ``until`` (exclusive) bound ``created_at``.
    """

    subscriber_uuid: UUID | None = None
    subscriber_uuids: Sequence[UUID] | None = None
    event_uuid: UUID | None = None
    status: DeliveryStatus | None = None
    status_code: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_deliveries(
    session: AsyncSession, filters: DeliveryFilter, after_seq: int | None, limit: int
) -> list[Any]:
    """Deliveries newest first (``seq`` and the ``delivery_columns()``), after ``after_seq``."""
    query = select(_SEQ, *_COLUMNS).limit(limit)
    order = [_SEQ.desc()]
    if filters.subscriber_uuid is not None:
        query = query.where(_TABLE.c.subscriber_uuid == filters.subscriber_uuid)
    if filters.subscriber_uuids is not None:
        query = query.where(_TABLE.c.subscriber_uuid.in_(list(filters.subscriber_uuids)))
    if filters.event_uuid is not None:
        query = query.where(_TABLE.c.event_uuid == filters.event_uuid)
    if filters.status is not None:
        # A one-value range, in the order of ix_deliveries_status_seq: the scan stops at the page's
        # end. With "status = 'failed'" (and no statistics on status, migration 0007) the planner
        # read every finished row through ix_deliveries_retention and sorted them (26 ms vs 0.2 ms
        # with 100,000 deliveries).
        status = _TABLE.c.status
        query = query.where(status >= filters.status.value, status <= filters.status.value)
        if filters.subscriber_uuid is None:
            order = [status.desc(), _SEQ.desc()]
    if filters.status_code is not None:
        answered = (_ATTEMPTS.c.delivery_uuid == _TABLE.c.uuid) & (
            _ATTEMPTS.c.status_code == filters.status_code
        )
        query = query.where(exists().where(answered))
    if filters.since is not None:
        query = query.where(_TABLE.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(_TABLE.c.created_at < filters.until)
    if after_seq is not None:
        query = query.where(after_seq > _SEQ)
    return list((await session.execute(query.order_by(*order))).all())


async def get_delivery(session: AsyncSession, delivery_uuid: UUID) -> Any:
    """One delivery (the ``delivery_columns()`` and ``payload``); ``NotFound`` for an unknown uuid."""
    query = select(*_COLUMNS, _TABLE.c.payload).where(_TABLE.c.uuid == delivery_uuid)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"delivery {delivery_uuid} not found")
    return row


async def attempts_of(session: AsyncSession, delivery_uuid: UUID) -> list[Any]:
    """A delivery's attempts in order (the columns of an attempt object, body uncut)."""
    return list((await session.execute(_ATTEMPTS_SQL, {"uuid": delivery_uuid})).all())


# date_bin on UTC hours: a third cheaper per row than date_trunc with a time zone (the rows of a
# day are all read; 50,000 of them take ~30 ms).
_OUTCOMES_SQL = text(
    """
SELECT date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour, status, count(*) AS n
FROM deliveries
WHERE created_at >= :since AND subscriber_kind = 'webhook'
GROUP BY 1, 2
"""
)


async def outcomes_by_hour(session: AsyncSession, since: datetime) -> list[Any]:
    """Webhook deliveries created since ``since`` counted by hour and status (``hour, status, n``)."""
    return list((await session.execute(_OUTCOMES_SQL, {"since": since})).all())
