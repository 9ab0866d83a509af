"""Portal links: made by an admin, exchanged once for a portal session, revoked.

A link's token is 32 random bytes (URL-safe base64) carried in its URL; the table keeps only its
SHA-256, so the list of links can never show a working URL. Looking at a link (``check_link``,
the page a ``GET`` of its URL shows) spends nothing; exchanging it (``exchange``, the page's
button) marks it used in the same statement that checks it (so two exchanges racing on two
replicas open one session) and starts a project session ending at the link's ``expires_at``.
Functions add to the caller's session and never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.core.console_sessions import TOKEN_BYTES, start_session, token_hash
from service.errors import NotFound
from service.models.console_sessions import ConsoleSession
from service.models.portal_links import PortalLink

ENTRY_PATH = "/portal/enter/"
"""Where a link's token is presented: the URL of a link is this path and the token."""


def link_url(base_url: str, token: str) -> str:
    """The absolute URL of a link, on the host (and scheme) the request that made it came to."""
    return base_url.rstrip("/") + ENTRY_PATH + token


class Refusal(StrEnum):
    """Why a link opens nothing (each shown on the page of a 410)."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Exchanged:
    """A link exchanged for a portal session: the session's token and the link."""

    session_token: str
    link: PortalLink


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock, the one links expire by."""
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    return now


async def create_link(
    session: AsyncSession, project_uuid: UUID, *, lifetime_s: int, read_only: bool
) -> tuple[PortalLink, str]:
    """Record a new link to ``project_uuid``'s portal; returns it and its token (shown once)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = await database_now(session)
    link = PortalLink(
        uuid=uuid4(),
        token_hash=token_hash(token),
        project_uuid=project_uuid,
        read_only=read_only,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_s),
    )
    session.add(link)
    await session.flush()
    return link, token


async def list_links(
    session: AsyncSession, project_uuid: UUID | None, after: tuple[datetime, UUID] | None, limit: int
) -> list[PortalLink]:
    """Links newest first (by ``created_at``, then ``uuid``), optionally of one project."""
    created_at, uuid = col(PortalLink.created_at), col(PortalLink.uuid)
    query = select(PortalLink).order_by(created_at.desc(), uuid.desc()).limit(limit)
    if project_uuid is not None:
        query = query.where(col(PortalLink.project_uuid) == project_uuid)
    if after is not None:
        query = query.where(tuple_(created_at, uuid) < tuple_(*after))
    return list((await session.execute(query)).scalars())


async def revoke_link(session: AsyncSession, link_uuid: UUID) -> None:
    """Revoke the link (its URL opens nothing any more) and end every session started from it;
    ``NotFound`` for an unknown link. Revoking twice changes nothing."""
    link = await session.get(PortalLink, link_uuid, with_for_update=True)
    if link is None:
        raise NotFound(f"portal link {link_uuid} not found")
    if link.revoked_at is None:
        link.revoked_at = await database_now(session)
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.portal_link_uuid) == link_uuid))
    await session.flush()


_USE_SQL = text(
    """
UPDATE portal_links SET used_at = now()
WHERE token_hash = :hash AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING uuid
"""
)


async def exchange(session: AsyncSession, token: str) -> Exchanged | Refusal:
    """Use the link of ``token``: a new portal session, or why there is none."""
    used = (await session.execute(_USE_SQL, {"hash": token_hash(token)})).scalar_one_or_none()
    if used is None:
        return await _refusal(session, token)
    link = await session.get(PortalLink, used, populate_existing=True)
    assert link is not None
    session_token = await start_session(
        session,
        project_uuid=link.project_uuid,
        read_only=link.read_only,
        ends_at=link.expires_at,
        portal_link_uuid=link.uuid,
    )
    return Exchanged(session_token=session_token, link=link)


async def check_link(session: AsyncSession, token: str) -> PortalLink | Refusal:
    """The link of ``token`` when it would open the portal now, else why not; spends nothing
    (a link preview or a mail scanner fetching the URL leaves the link as it was)."""
    query = select(PortalLink, func.now()).where(col(PortalLink.token_hash) == token_hash(token))
    found = (await session.execute(query)).one_or_none()
    if found is None:
        return Refusal.UNKNOWN
    link, now = found
    if link.revoked_at is not None:
        return Refusal.REVOKED
    if link.used_at is not None:
        return Refusal.USED
    return Refusal.EXPIRED if link.expires_at <= now else link


async def _refusal(session: AsyncSession, token: str) -> Refusal:
    found = await check_link(session, token)
    return found if isinstance(found, Refusal) else Refusal.UNKNOWN
