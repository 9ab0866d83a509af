"""The transactional outbox: ``deliveries`` and their ``delivery_attempts``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    text,
)
from sqlmodel import Field, SQLModel


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _tz(nullable: bool = True, **kwargs: Any) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, **kwargs))


class Delivery(SQLModel, table=True):
    """One event to one subscriber; the payload is rendered when the event is recorded."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # What is due, per subscriber (claims) and in all (metrics): pending rows only, so its cost
        # follows the queue, not the table (migration 0006). A rate-limited webhook's rows parked
        # while it waits for a slot are not in it (migration 0017): the claim's walk never meets them.
        Index(
            "ix_deliveries_subscriber_due",
            "subscriber_uuid",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND NOT throttled"),
        ),
        # The parked rows, per subscriber, oldest first: what a claim serves a webhook from when
        # its slot opens (migration 0017).
        Index(
            "ix_deliveries_throttled",
            "subscriber_uuid",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND throttled"),
        ),
        # An ordered webhook's oldest pending delivery by recording order, in one descent; a claim
        # adds no entry to it (migration 0015).
        Index(
            "ix_deliveries_pending_seq",
            "subscriber_uuid",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_lease", "lease_expires_at", postgresql_where=text("status = 'delivering'")),
        Index("ix_deliveries_subscriber_uuid_seq", "subscriber_uuid", "seq"),
        Index("ix_deliveries_status_seq", "status", "seq"),
        # Covering: the console's day of outcomes by hour reads the index alone (migration 0009).
        Index("ix_deliveries_created_at", "created_at", postgresql_include=["status", "subscriber_kind"]),
        # Retention reads the oldest finished deliveries first (migration 0004).
        Index(
            "ix_deliveries_retention",
            "updated_at",
            postgresql_where=text("status IN ('delivered', 'cancelled', 'failed')"),
        ),
    )

    # The server's default serves batch ingest's COPY (migration 0008).
    uuid: UUID = Field(primary_key=True, sa_column_kwargs={"server_default": text("gen_random_uuid()")})
    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), nullable=False, unique=True)
    )
    event_uuid: UUID = Field(index=True)
    event_type: str = Field(sa_column=Column(Text, nullable=False))
    subscriber_uuid: UUID
    subscriber_kind: str = Field(sa_column=Column(Text, nullable=False))
    payload: Any = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(
        default=DeliveryStatus.PENDING, sa_column=Column(Text, nullable=False, server_default="pending")
    )
    attempts_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    throttled: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    next_attempt_at: datetime | None = _tz(server_default=text("now()"))
    lease_expires_at: datetime | None = _tz()
    lease_token: UUID | None = None
    delivered_at: datetime | None = _tz()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = _tz(nullable=False, server_default=text("now()"))
    updated_at: datetime | None = _tz(nullable=False, server_default=text("now()"))


class DeliveryAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: when, how long, what came back."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        Index("ix_delivery_attempts_delivery_uuid_number", "delivery_uuid", "number"),
        # The delivery log's HTTP-status filter: the deliveries with an attempt answered this code.
        Index("ix_delivery_attempts_status_code", "status_code", "delivery_uuid"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    delivery_uuid: UUID = Field(
        sa_column=Column(ForeignKey("deliveries.uuid", ondelete="CASCADE"), nullable=False)
    )
    number: int
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_ms: float
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    response_body: str | None = Field(default=None, sa_column=Column(Text))
