"""The single ``installation`` row: this installation's random id, its telemetry hashing key and
the secrets canary (a token only this deployment's keys open: see ``service.core.secrets_at_rest``)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Column, DateTime, LargeBinary, SmallInteger, Text, text
from sqlmodel import Field, SQLModel


class Installation(SQLModel, table=True):
    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, sa_column=Column(SmallInteger, primary_key=True))
    installation_id: UUID
    anonymization_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    secrets_canary: str | None = Field(default=None, sa_type=Text, repr=False)
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
