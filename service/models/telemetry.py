"""``telemetry_heartbeats``: the single row through which replicas send one heartbeat per interval."""

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, SmallInteger
from sqlmodel import Field, SQLModel


def _tz() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class TelemetryHeartbeat(SQLModel, table=True):
    """Written only through the upserts of ``service.core.heartbeat`` (see there)."""

    __tablename__ = "telemetry_heartbeats"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    last_slot_start: datetime | None = _tz()
    """Start of the last interval a heartbeat was sent for (strictly increasing)."""
    last_sent_at: datetime | None = _tz()
    last_active_at: datetime | None = _tz()
    """Latest API activity any replica reported."""
