"""Deliveries (the outbox) as the API shows them: the list and one delivery with its attempts.
``redeliver`` lives with the delivery engine."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from service.api.deps import StateDep
from service.api.responses import error_responses, json_response
from service.core import deliveries as core
from service.core.deliveries import DeliveryFilter
from service.db import read_session
from service.models.deliveries import DeliveryStatus
from service.schemas.common import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from service.schemas.deliveries import (
    DeliveryDetail,
    DeliveryPage,
    attempt_out,
    delivery_out,
)

router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])


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
    filters = DeliveryFilter(subscriber_uuid=subscriber_uuid, event_uuid=event_uuid, status=status)
    async with read_session(state.sessions) as session:
        rows = await core.list_deliveries(session, filters, after_seq, limit + 1)
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
        row = await core.get_delivery(session, uuid)
        attempts = await core.attempts_of(session, uuid)
    detail = delivery_out(row)
    detail["attempts"] = [attempt_out(attempt).model_dump(mode="json") for attempt in attempts]
    return json_response(detail)
