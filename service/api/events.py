"""Event ingest (single and batch) and the notification feed."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from service.api.deps import StateDep, parse_json_body
from service.api.responses import JSONBytes, error_responses, json_response, raw_page
from service.core import feed
from service.core.events import EventConflict, RecordContext, Recorded, register_events
from service.core.feed import EventFilter
from service.db import INGEST_DEADLINE_S, driver_connection, read_session
from service.errors import Conflict, InvalidInput
from service.metrics import Metrics
from service.schemas.common import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from service.schemas.deliveries import delivery_out
from service.schemas.event_responses import BatchAccepted, EventAccepted, EventDetail, EventPage
from service.schemas.events import EventIn, ValidatedEvent, storable_json_text, validate_event
from service.state import HeraldState

router = APIRouter(prefix="/api/v1/events", tags=["events"])

MAX_BATCH_EVENTS = 1000
BATCH_DEADLINE_PER_EVENT_S = 0.02
EVENT_SCHEMA_REF = "#/components/schemas/EventIn"


def record_context(state: HeraldState) -> RecordContext:
    return RecordContext(
        anonymizer=state.installation.anonymizer,
        analytics_subscriber_uuid=state.installation.analytics_subscriber_uuid,
        telemetry_enabled=state.settings.telemetry_enabled,
    )


def count_ingested(metrics: Metrics, recorded: list[Recorded]) -> None:
    for item in recorded:
        if not item.replayed:
            metrics.events_ingested(item.type)


def _validated(text: bytes) -> ValidatedEvent:
    result = validate_event(parse_json_body(text), ("body",), text_checked=storable_json_text(text))
    if isinstance(result, list):
        raise InvalidInput(result)
    return result


@router.post(
    "",
    status_code=202,
    summary="Record one event",
    description=(
        "Validates the event against its type's layer, records it with one delivery per matching "
        "subscriber in one transaction, and answers 202 once committed. The same `uuid` again with the "
        "same content answers 200 with the original answer; with different content, 409."
    ),
    response_model=EventAccepted,
    response_model_exclude_none=True,
    responses={
        200: {"model": EventAccepted, "description": "A replay: the original answer."},
        **error_responses(409, 413, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": EVENT_SCHEMA_REF}}},
        }
    },
)
async def ingest_event(request: Request) -> Response:
    # State and metrics are read here, not through dependencies: sync ones run in a thread pool.
    state: HeraldState = request.app.state.herald
    event = _validated(await request.body())
    try:
        # No explicit transaction: recording is one statement, atomic and committed on its own.
        async with driver_connection(state.engine, INGEST_DEADLINE_S) as conn:
            [recorded] = await register_events(conn, record_context(state), [event])
    except EventConflict as exc:
        raise Conflict(exc.detail) from None
    count_ingested(request.app.state.metrics, [recorded])
    return json_response(recorded.answer(), 200 if recorded.replayed else 202)


@router.post(
    "/batch",
    status_code=202,
    summary="Record up to 1000 events in one transaction",
    description=(
        "All or nothing: a 422 names the index of every bad event; a conflicting replay answers 409 "
        "naming its index. A replayed item is answered in place with `replayed: true`."
    ),
    response_model=BatchAccepted,
    response_model_exclude_none=True,
    responses=error_responses(409, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "additionalProperties": False,
                        "properties": {
                            "events": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_BATCH_EVENTS,
                                "items": {"$ref": EVENT_SCHEMA_REF},
                            }
                        },
                    }
                }
            },
        }
    },
)
async def ingest_batch(request: Request) -> Response:
    state: HeraldState = request.app.state.herald
    events = _validated_batch(await request.body())
    # A big batch is legitimately slower; fail-fast matters most for single events.
    deadline_s = INGEST_DEADLINE_S + BATCH_DEADLINE_PER_EVENT_S * len(events)
    try:
        # A transaction, so that a conflict found after the insert undoes the whole batch.
        async with driver_connection(state.engine, deadline_s) as conn, conn.transaction():
            recorded = await register_events(conn, record_context(state), events)
    except EventConflict as exc:
        raise Conflict(f"events[{exc.index}]: {exc.detail}") from None
    count_ingested(request.app.state.metrics, recorded)
    items = [r.answer() | ({"replayed": True} if r.replayed else {}) for r in recorded]
    return json_response({"items": items}, 202)


def _validated_batch(text: bytes) -> list[ValidatedEvent]:
    body = parse_json_body(text)
    text_checked = storable_json_text(text)
    if not isinstance(body, dict):
        raise InvalidInput.single(["body"], 'expected an object {"events": [...]}', "model_attributes_type")
    unknown = sorted(set(body) - {"events"})
    if unknown:
        raise InvalidInput.single(["body", unknown[0]], f"unknown key {unknown[0]!r}", "extra_forbidden")
    raw_events = body.get("events")
    if not isinstance(raw_events, list):
        raise InvalidInput.single(["body", "events"], "events must be a list of events", "list_type")
    if not 1 <= len(raw_events) <= MAX_BATCH_EVENTS:
        raise InvalidInput.single(
            ["body", "events"],
            f"a batch holds 1 to {MAX_BATCH_EVENTS} events, got {len(raw_events)}",
            "too_long",
        )
    errors: list[dict[str, Any]] = []
    events: list[ValidatedEvent] = []
    seen: dict[UUID, int] = {}
    for index, raw in enumerate(raw_events):
        result = validate_event(raw, ("body", "events", index), text_checked=text_checked)
        if isinstance(result, list):
            errors.extend(result)
            continue
        if result.uuid is not None:
            if result.uuid in seen:
                errors.append(
                    {
                        "loc": ["body", "events", index, "uuid"],
                        "msg": f"uuid {result.uuid} is already used by events[{seen[result.uuid]}]",
                        "type": "value_error",
                    }
                )
            seen.setdefault(result.uuid, index)
        events.append(result)
    if errors:
        raise InvalidInput(errors)
    return events


@router.get(
    "",
    summary="The notification feed",
    description=(
        "Newest first (ingest order). `since` is inclusive, `until` exclusive, on the event timestamp."
    ),
    response_model=EventPage,
    responses=error_responses(422, 503),
)
async def list_events(
    state: StateDep,
    type: Annotated[str | None, Query(max_length=200, description="Exact type or `*` pattern.")] = None,
    project_uuid: UUID | None = None,
    job_uuid: UUID | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    after_seq = decode_cursor(cursor)
    filters = EventFilter(type=type, project_uuid=project_uuid, job_uuid=job_uuid, since=since, until=until)
    async with read_session(state.sessions) as session:
        rows = await feed.list_events(session, filters, after_seq, limit + 1)
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return raw_page((row.payload for row in rows[:limit]), next_cursor)


@router.get(
    "/{uuid}",
    summary="One event and its deliveries",
    response_model=EventDetail,
    responses=error_responses(404, 422, 503),
)
async def get_event(uuid: UUID, state: StateDep) -> Response:
    async with read_session(state.sessions) as session:
        payload = await feed.event_payload(session, uuid)
        deliveries = await feed.deliveries_of_event(session, uuid)
    body = (
        b'{"event":'
        + payload.encode()
        + b',"deliveries":'
        + orjson.dumps([delivery_out(d) for d in deliveries])
        + b"}"
    )
    return JSONBytes(body)


# Referenced by the OpenAPI schema through EVENT_SCHEMA_REF (see service.main.custom_openapi).
OPENAPI_MODELS = (EventIn,)
