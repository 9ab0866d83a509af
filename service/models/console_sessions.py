"""Signed-in sessions of the web console: one row per session, keyed by a hash of its token.

The browser holds the token (an HttpOnly cookie); the database holds only its SHA-256, so a
copy of the table signs nobody in. Rows live in the database, so a session survives a restart
and works on every replica. ``project_uuid`` is ``None`` for an admin session; a session bound
to one project (``read_only`` or not) is what a project's portal will use.

``key_check`` ties an admin session to the API key it was started with: an HMAC of the key keyed
with the session token, so the row tells nothing about the key without the browser's cookie.
Once that key is no longer configured, its sessions stop working.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Text, text
from sqlmodel import Field, SQLModel


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_sessions"
    __table_args__ = (
        Index(
            "ix_console_sessions_portal_link_uuid",
            "portal_link_uuid",
            postgresql_where=text("portal_link_uuid IS NOT NULL"),
        ),
    )

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    project_uuid: UUID | None = None
    key_check: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    read_only: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    # The portal link the session was opened with: revoking the link ends the session.
    portal_link_uuid: UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("portal_links.uuid", ondelete="CASCADE", name="fk_console_sessions_portal_link"),
            nullable=True,
        ),
    )
    # Sign-in removes the expired rows through this index.
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class ConsoleSignIn(SQLModel, table=True):
    """Failed authentications of one client address in one minute, API keys and console
    sign-ins alike (the throttle of ``service.core.auth_throttle``)."""

    __tablename__ = "console_sign_ins"

    client: str = Field(sa_column=Column(Text, primary_key=True))
    minute: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True, index=True))
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
