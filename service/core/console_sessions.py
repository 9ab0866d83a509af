"""Console sessions: start one for a token only the browser keeps, find it again, end it.

A session token is 32 random bytes (URL-safe base64); the table keeps its SHA-256. Sessions
end at a fixed time (at most ``MAX_SESSION_SECONDS`` after sign-in), not when idle. Functions
add to the caller's session and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
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


def key_check(token: str, api_key: str) -> bytes:
    """What the table keeps to tie a session to the API key that started it."""
    return hmac.new(token.encode(), api_key.encode(), hashlib.sha256).digest()


def started_with_one_of(found: ConsoleSession, token: str, api_keys: Iterable[str]) -> bool:
    """Whether the session was started with one of ``api_keys`` (constant time per key)."""
    if found.key_check is None:
        return False
    matches = [hmac.compare_digest(found.key_check, key_check(token, key)) for key in api_keys]
    return any(matches)


async def start_session(
    session: AsyncSession,
    *,
    lifetime_s: float = MAX_SESSION_SECONDS,
    api_key: str | None = None,
    project_uuid: UUID | None = None,
    read_only: bool = False,
    ends_at: datetime | None = None,
    portal_link_uuid: UUID | None = None,
) -> str:
    """Record a new session and return its token (shown to the browser once, as a cookie).

    An admin session lasts ``lifetime_s`` (at most ``MAX_SESSION_SECONDS``); a portal session
    ends at ``ends_at``, when its link expires. Expired sessions are removed on the way, so the
    table holds only live ones.
    """
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= func.now()))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = (await session.execute(select(func.now()))).scalar_one()
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            key_check=None if api_key is None else key_check(token, api_key),
            project_uuid=project_uuid,
            read_only=read_only,
            expires_at=ends_at or now + timedelta(seconds=min(lifetime_s, MAX_SESSION_SECONDS)),
            portal_link_uuid=portal_link_uuid,
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
