"""What the delivery controls keep besides the subscriber's own columns (migration 0015).

``subscriber_rates``: the next free slot of each rate-limited webhook (GCRA's theoretical
arrival time), advanced by the webhook claim, and, while the webhook has rows parked
(``deliveries.throttled``), ``opens_at``: when a claim serves it next (migration 0017). No
foreign key: the claim must never wait on a lock of the subscriber row (the outcome writer and a
disable hold it); a deleted webhook's row is swept by the dispatcher.

``dispatcher_inflight``: one row per running dispatcher, its deliveries in flight per subscriber
as two parallel arrays, rewritten by each of its claims; ``expires_at`` moves with its lease, so
a dead dispatcher's counts stop counting when its deliveries' leases would have expired.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, Integer, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel


class SubscriberRate(SQLModel, table=True):
    __tablename__ = "subscriber_rates"
    __table_args__ = (
        Index("ix_subscriber_rates_opens_at", "opens_at", postgresql_where=text("opens_at IS NOT NULL")),
    )

    subscriber_uuid: UUID = Field(primary_key=True)
    next_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    opens_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class DispatcherInflight(SQLModel, table=True):
    __tablename__ = "dispatcher_inflight"

    dispatcher_uuid: UUID = Field(primary_key=True)
    subscriber_uuids: list[UUID] = Field(sa_column=Column(ARRAY(Uuid()), nullable=False))
    counts: list[int] = Field(sa_column=Column(ARRAY(Integer()), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
