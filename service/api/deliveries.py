"""Deliveries (the outbox) as the API shows them: the list and one delivery with its attempts.
``redeliver`` lives with the delivery engine."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import select, text
from sqlmodel import SQLModel

from service.api.deps import StateDep
from service.api.responses import error_responses, json_response
from service.db import read_session
from service.errors import NotFound
from service.models.deliveries import Delivery, DeliveryStatus
from service.schemas.common import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from service.schemas.deliveries import (
    RESPONSE_BODY_MAX_BYTES,
    AttemptOut,
    DeliveryDetail,
    DeliveryPage,
    delivery_columns,
    delivery_out,
)

router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])

# The columns of a delivery object (the same list ``delivery_columns()`` gives raw SQL).
_TABLE = SQLModel.metadata.tables[Delivery.__tablename__]
_COLUMNS = [_TABLE.c[name.strip()] for name in delivery_columns().split(",")]
_SEQ = _TABLE.c.seq

_ATTEMPTS_SQL = text(
    "SELECT number, started_at, duration_ms, status_code, error, response_body "
    "FROM delivery_attempts WHERE delivery_uuid = :uuid ORDER BY number, id"
)


def _cut_utf8(body: str | None, limit_bytes: int) -> str | None:
    if body is None:
        return None
    encoded = body.encode()
    return body if len(encoded) <= limit_bytes else encoded[:limit_bytes].decode(errors="ignore")


@router.get(
    "",
    summary="List deliveries",
    description=(
        "Newest first. A deleted subscriber's deliveries stay listable by `subscriber_uuid` "
        "(its pending ones `cancelled`)."
    ),
    response_model=DeliveryPage,
    responses=error_responses(422, 503),
)
async def list_deliveries(
    state: StateDep,
    subscriber_uuid: Annotated[UUID | None, Query(description="Only deliveries to this subscriber.")] = None,
    event_uuid: Annotated[UUID | None, Query(description="Only deliveries of this event.")] = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status.")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    after_seq = decode_cursor(cursor)
    query = select(_SEQ, *_COLUMNS).order_by(_SEQ.desc()).limit(limit + 1)
    if subscriber_uuid is not None:
        query = query.where(_TABLE.c.subscriber_uuid == subscriber_uuid)
    if event_uuid is not None:
        query = query.where(_TABLE.c.event_uuid == event_uuid)
    if status is not None:
        query = query.where(_TABLE.c.status == status.value)
    if after_seq is not None:
        query = query.where(after_seq > _SEQ)
    async with read_session(state.sessions) as session:
        rows = (await session.execute(query)).all()
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return json_response({"items": [delivery_out(row) for row in rows[:limit]], "next_cursor": next_cursor})


@router.get(
    "/{uuid}",
    summary="One delivery with its attempts",
    description="Attempts in order; each `response_body` holds at most 4 KiB of the receiver's answer.",
    response_model=DeliveryDetail,
    responses=error_responses(404, 422, 503),
)
async def get_delivery(
    uuid: Annotated[UUID, Path(description="The delivery's uuid.")], state: StateDep
) -> Response:
    async with read_session(state.sessions) as session:
        row = (await session.execute(select(*_COLUMNS).where(_TABLE.c.uuid == uuid))).one_or_none()
        if row is None:
            raise NotFound(f"delivery {uuid} not found")
        attempts = (await session.execute(_ATTEMPTS_SQL, {"uuid": uuid})).all()
    detail = delivery_out(row)
    detail["attempts"] = [
        AttemptOut.model_validate(attempt)
        .model_copy(update={"response_body": _cut_utf8(attempt.response_body, RESPONSE_BODY_MAX_BYTES)})
        .model_dump(mode="json")
        for attempt in attempts
    ]
    return json_response(detail)
