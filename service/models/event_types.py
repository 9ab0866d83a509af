"""The ``event_types`` table: the catalog, ``ping`` and the operational types (rows inserted by
migrations), and the custom types producers define at run time (docs/events.md, "Custom event
types").

A custom type's row is never removed while events may name it (``events.type`` references it):
deleting the type sets ``deleted_at``, and creating it again revives the row. ``version`` grows
with every change of a custom type (create, PATCH, delete): each replica caches one compiled
validator per (name, version) and recompiles when it reads a newer version.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class EventType(SQLModel, table=True):
    __tablename__ = "event_types"

    name: str = Field(primary_key=True, sa_type=Text)
    description: str = Field(sa_type=Text)
    custom: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    # The JSON Schema (draft 2020-12) of a custom type's ``data``; NULL for the built-in types.
    schema_: dict[str, Any] | None = Field(default=None, sa_column=Column("schema", JSONB, nullable=True))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default=text("1")))
    created_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
    updated_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
