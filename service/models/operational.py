"""What operational events need besides the events table (migration 0013).

``operational_reports``: one row per delivery reported ``herald:delivery:failing``, so that it is
reported once, and ``herald:delivery:recovered`` follows only a delivery that was reported (and
only once). It goes with its delivery (``ON DELETE CASCADE``, retention included).

``operational_counts``: how many operational events of each type were ever recorded, written in
the transaction that records them; ``/metrics`` serves it as a counter that retention never
lowers and that every replica shares.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel


class OperationalReport(SQLModel, table=True):
    __tablename__ = "operational_reports"

    delivery_uuid: UUID = Field(
        sa_column=Column(
            PG_UUID(as_uuid=True), ForeignKey("deliveries.uuid", ondelete="CASCADE"), primary_key=True
        )
    )
    failing_reported_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    recovered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class OperationalCount(SQLModel, table=True):
    __tablename__ = "operational_counts"

    type: str = Field(sa_column=Column(Text, ForeignKey("event_types.name"), primary_key=True))
    recorded: int = Field(sa_column=Column(BigInteger, nullable=False))
