"""Event ingest (single and batch) and the notification feed."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from service.api.deps import StateDep
from service.api.responses import JSONBytes, error_responses, raw_page
from service.core import custom_types, feed
from service.core.custom_schemas import InvalidCustomEvents
from service.core.events import EventConflict, RecordContext, Recorded, register_events
from service.core.feed import EventFilter
from service.db import INGEST_DEADLINE_S, driver_connection, read_session
from service.errors import Conflict, InvalidInput
from service.metrics import Metrics
from service.schemas import cloudevents
from service.schemas.common import DEFAULT_LIMIT, CursorQuery, LimitQuery, decode_cursor, encode_cursor
from service.schemas.deliveries import delivery_out
from service.schemas.event_responses import BatchAccepted, EventAccepted, EventDetail, EventPage
from service.schemas.events import BATCH_ADAPTER, EVENT_ADAPTER, InvalidBodies, validate_batch, validate_event
from service.schemas.inputs import NO_NUL, Moment
from service.state import HeraldState

router = APIRouter(prefix="/api/v1/events", tags=["events"])

BATCH_DEADLINE_PER_EVENT_S = 0.02
TypeFilter = Annotated[str | None, Query(max_length=200, description="Exact type or `*` pattern."), NO_NUL]
# The bodies are read as bytes and validated by pydantic-core in one pass (no intermediate
# Python objects), so FastAPI does not see their models: ``request_body_schemas`` puts the
# models' own schemas into the OpenAPI components under these names.
REQUEST_BODIES: dict[str, TypeAdapter[Any]] = {"EventIn": EVENT_ADAPTER, "EventBatchIn": BATCH_ADAPTER}


def _request_body(name: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def request_body_schemas() -> dict[str, Any]:
    """The JSON schemas of ``REQUEST_BODIES`` and of every model they use, by component name."""
    template = "#/components/schemas/{model}"
    mapping, definitions = TypeAdapter.json_schemas(
        [(name, "validation", adapter) for name, adapter in REQUEST_BODIES.items()], ref_template=template
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for name in REQUEST_BODIES:
        schema = mapping[(name, "validation")]
        if schema != {"$ref": template.format(model=name)}:  # a union: no component of its own yet
            schemas[name] = schema
    return schemas


def record_context(state: HeraldState) -> RecordContext:
    """What recording needs from this installation: its anonymizer and telemetry settings."""
    return RecordContext(
        anonymizer=state.installation.anonymizer,
        analytics_subscriber_uuid=state.installation.analytics_subscriber_uuid,
        telemetry_enabled=state.settings.telemetry_enabled,
        schemas=state.custom_schemas,
    )


async def _explained(state: HeraldState, invalid: InvalidBodies) -> InvalidInput:
    async with read_session(state.sessions) as session:
        return await custom_types.explained(session, invalid)


def _ingest_body(request: Request, text: bytes) -> tuple[bytes, cloudevents.Mode | None]:
    """Herald's ingest body of a request, and how it came when it is a CloudEvent (the mode
    names its errors in CloudEvents terms)."""
    kind = cloudevents.media_type(request.headers.get("content-type"))
    if kind == cloudevents.STRUCTURED:
        return cloudevents.structured_body(text), cloudevents.Mode()
    if cloudevents.is_binary(request.headers):
        return cloudevents.binary_body(request.headers, text), cloudevents.Mode(binary=True)
    return text, None


def count_ingested(metrics: Metrics, recorded: list[Recorded]) -> None:
    """Count the events recorded (replays are not new events)."""
    for item in recorded:
        if not item.replayed:
            metrics.events_ingested(item.type)


# The answers are ``Recorded`` values: FastAPI checks them against the declared response model
# and writes them with its serializer (pydantic-core, straight to JSON bytes).
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
    # The original answer, as it was: ``replayed`` belongs to batch items only.
    response_model_exclude={"replayed"},
    responses={
        200: {"model": EventAccepted, "description": "A replay: the original answer."},
        **error_responses(409, 413, 422, 503),
    },
    openapi_extra=_request_body("EventIn"),
)
async def ingest_event(request: Request, response: Response) -> Recorded:
    # State and metrics are read here, not through dependencies: sync ones run in a thread pool.
    state: HeraldState = request.app.state.herald
    text, mode = _ingest_body(request, await request.body())
    try:
        event = validate_event(text)
    except InvalidBodies as exc:
        explained = await _explained(state, exc)
        raise (mode.restate(explained) if mode else explained) from None
    try:
        # No explicit transaction: recording is one statement, atomic and committed on its own.
        async with driver_connection(state.engine, INGEST_DEADLINE_S) as conn:
            [recorded] = await register_events(conn, record_context(state), [event])
    except EventConflict as exc:
        raise Conflict(exc.detail) from None
    except InvalidCustomEvents as exc:
        raise exc.at(("body",), indexed=False) from None
    count_ingested(request.app.state.metrics, [recorded])
    if recorded.replayed:
        response.status_code = 200
    return recorded


@router.post(
    "/batch",
    status_code=202,
    summary="Record up to 1000 events in one transaction",
    description=(
        "All or nothing: a 422 names the index of every bad event; a conflicting replay answers 409 "
        "naming its index. A replayed item is answered in place with `replayed: true`."
    ),
    response_model=BatchAccepted,
    # ``replayed`` only where true.
    response_model_exclude_defaults=True,
    responses=error_responses(409, 413, 422, 503),
    openapi_extra=_request_body("EventBatchIn"),
)
async def ingest_batch(request: Request) -> dict[str, list[Recorded]]:
    state: HeraldState = request.app.state.herald
    text, mode = await request.body(), None
    if cloudevents.media_type(request.headers.get("content-type")) == cloudevents.BATCH:
        text, mode = cloudevents.batch_body(text), cloudevents.Mode(batch=True)
    try:
        events = validate_batch(text)
    except InvalidBodies as exc:
        explained = await _explained(state, exc)
        raise (mode.restate(explained) if mode else explained) from None
    # A big batch is legitimately slower; fail-fast matters most for single events.
    deadline_s = INGEST_DEADLINE_S + BATCH_DEADLINE_PER_EVENT_S * len(events)
    try:
        # A transaction, so that a conflict found after the insert undoes the whole batch.
        async with driver_connection(state.engine, deadline_s) as conn, conn.transaction():
            recorded = await register_events(conn, record_context(state), events)
    except EventConflict as exc:
        raise Conflict(f"events[{exc.index}]: {exc.detail}") from None
    except InvalidCustomEvents as exc:
        raise exc.at(("body", "events"), indexed=True) from None
    count_ingested(request.app.state.metrics, recorded)
    return {"items": recorded}


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
    type: TypeFilter = None,
    project_uuid: UUID | None = None,
    job_uuid: UUID | None = None,
    since: Annotated[Moment | None, Query(description="Inclusive; RFC 3339 with an offset.")] = None,
    until: Annotated[Moment | None, Query(description="Exclusive; RFC 3339 with an offset.")] = None,
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
