"""Portal links: one-time links that open a project's portal.

A link's token is shown once (in the ``url`` of the create answer); the table keeps its SHA-256.
Opening it (the ``POST`` of its page's button) sets ``used_at`` and starts a portal session (a
``console_sessions`` row pointing back here) that ends at ``expires_at``; revoking sets
``revoked_at`` and ends those sessions.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, Column, DateTime, Index, LargeBinary, text
from sqlmodel import Field, SQLModel


def _moment(*, nullable: bool = True, server_now: bool = False) -> datetime | None:
    column = Column(
        DateTime(timezone=True), nullable=nullable, server_default=text("now()") if server_now else None
    )
    found: datetime | None = Field(default=None, sa_column=column)
    return found


class PortalLink(SQLModel, table=True):
    __tablename__ = "portal_links"
    __table_args__ = (
        Index("ix_portal_links_created_at", "created_at"),
        Index("ix_portal_links_project_uuid", "project_uuid", "created_at"),
    )

    uuid: UUID = Field(primary_key=True)
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    project_uuid: UUID
    read_only: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    created_at: datetime | None = _moment(nullable=False, server_now=True)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = _moment()
    revoked_at: datetime | None = _moment()
