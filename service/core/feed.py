"""Reading the notification feed: events newest first (ingest order) with filters, one event's
payload, and its deliveries. The payloads are the stored JSON text, served verbatim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog import pattern_to_like
from service.core.matching import reaches_type_sql
from service.errors import NotFound
from service.schemas.deliveries import delivery_columns


@dataclass(frozen=True)
class EventFilter:
    """Which events a feed shows; ``None`` fields do not filter. ``type`` is an exact name or a
    ``*`` pattern; ``since`` is inclusive and ``until`` exclusive, on the event timestamp."""

    type: str | None = None
    project_uuid: UUID | None = None
    job_uuid: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(filters: EventFilter, after_seq: int | None) -> tuple[list[str], dict[str, Any]]:
    where = ["TRUE"]
    params: dict[str, Any] = {}
    if filters.type is not None:
        if "*" in filters.type:
            # As for subscriptions: only a herald: pattern reaches the operational types.
            reaches = reaches_type_sql("CAST(:type_pattern AS text)", "type")
            where.append(f"type LIKE :type_like AND {reaches}")
            params["type_like"] = pattern_to_like(filters.type)
            params["type_pattern"] = filters.type
        else:
            where.append("type = :type")
            params["type"] = filters.type
    for name, value in (("project_uuid", filters.project_uuid), ("job_uuid", filters.job_uuid)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    if filters.since is not None:
        where.append("timestamp >= :since")
        params["since"] = filters.since
    if filters.until is not None:
        where.append("timestamp < :until")
        params["until"] = filters.until
    if after_seq is not None:
        where.append("seq < :after_seq")
        params["after_seq"] = after_seq
    return where, params


async def list_events(
    session: AsyncSession, filters: EventFilter, after_seq: int | None, limit: int
) -> list[Any]:
    """Events newest first after ``after_seq``: rows of ``seq`` and ``payload`` (JSON text)."""
    where, params = _conditions(filters, after_seq)
    # Only the constant fragments above are joined in; every value is a bound parameter.
    sql = text(
        f"SELECT seq, CAST(payload AS text) AS payload FROM events WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY seq DESC LIMIT :limit"
    )
    return list((await session.execute(sql, {**params, "limit": limit})).all())


async def event_payload(session: AsyncSession, event_uuid: UUID) -> str:
    """The event's notification payload as stored JSON text; ``NotFound`` for an unknown uuid."""
    payload: str | None = (
        await session.execute(
            text("SELECT CAST(payload AS text) FROM events WHERE uuid = :uuid"), {"uuid": event_uuid}
        )
    ).scalar()
    if payload is None:
        raise NotFound(f"event {event_uuid} not found")
    return payload


async def deliveries_of_event(session: AsyncSession, event_uuid: UUID) -> list[Any]:
    """The event's deliveries in creation order (rows of ``delivery_columns()``)."""
    sql = text(f"SELECT {delivery_columns()} FROM deliveries WHERE event_uuid = :uuid ORDER BY seq")  # noqa: S608
    return list((await session.execute(sql, {"uuid": event_uuid})).all())
