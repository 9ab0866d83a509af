"""Console sessions: start one for a token only the browser keeps, find it again, end it.

A session token is 32 random bytes (URL-safe base64); the table keeps its SHA-256. Sessions
end at a fixed time (at most ``MAX_SESSION_SECONDS`` after sign-in), not when idle. Functions
add to the caller's session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.models.console_sessions import ConsoleSession

MAX_SESSION_SECONDS = 12 * 3600
TOKEN_BYTES = 32


def token_hash(token: str) -> bytes:
    """What the table keeps of a session token."""
    return hashlib.sha256(token.encode()).digest()


async def start_session(
    session: AsyncSession,
    *,
    lifetime_s: float = MAX_SESSION_SECONDS,
    project_uuid: UUID | None = None,
    read_only: bool = False,
) -> str:
    """Record a new session and return its token (shown to the browser once, as a cookie).

    Expired sessions are removed on the way, so the table holds only live ones.
    """
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= func.now()))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = (await session.execute(select(func.now()))).scalar_one()
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            project_uuid=project_uuid,
            read_only=read_only,
            expires_at=now + timedelta(seconds=min(lifetime_s, MAX_SESSION_SECONDS)),
        )
    )
    await session.flush()
    return token


async def find_session(session: AsyncSession, token: str) -> ConsoleSession | None:
    """The live session of ``token``, or ``None`` (unknown or expired)."""
    query = select(ConsoleSession).where(
        col(ConsoleSession.token_hash) == token_hash(token), col(ConsoleSession.expires_at) > func.now()
    )
    return (await session.execute(query)).scalar_one_or_none()


async def end_session(session: AsyncSession, token: str) -> None:
    """Forget the session of ``token`` (nothing happens for an unknown one)."""
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.token_hash) == token_hash(token)))
