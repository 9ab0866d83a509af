"""The telemetry relay for front ends, and the list of analytics event names."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, JsonValue

from service.api.deps import StateDep, read_json_body
from service.api.responses import error_responses, json_response
from service.common.telemetry import TelemetryData
from service.core.analytics import (
    CLIENT_EVENTS,
    Event,
    EventSource,
    event_source,
    send_event,
    telemetry_off_reason,
)
from service.db import INGEST_DEADLINE_S, transaction
from service.errors import InvalidInput

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

MAX_PROPERTIES_BYTES = 8192
MAX_PROPERTIES_DEPTH = 10
CLIENT_EVENT_NAMES = sorted(event.value for event in CLIENT_EVENTS)


class AnalyticsEventIn(BaseModel):
    """A client-side telemetry event (documentation of the body; validated by hand below)."""

    event: str = Field(
        description="A client-side analytics event name (see `GET /api/v1/analytics/events`).",
        json_schema_extra={"enum": list[JsonValue](CLIENT_EVENT_NAMES)},
    )
    properties: dict[str, Any] | None = Field(
        default=None,
        description=(
            f"Already anonymized data (no names, free text or raw identifiers): a JSON object of at most "
            f"{MAX_PROPERTIES_BYTES} bytes serialized, nested at most {MAX_PROPERTIES_DEPTH} levels. "
            "Sent as the event's `event_properties`."
        ),
    )


class Queued(BaseModel):
    queued: bool = Field(description="Whether the event will be sent.")
    reason: str | None = Field(default=None, description="Why not, when `queued` is false.")


class AnalyticsEventOut(BaseModel):
    name: str
    source: EventSource = Field(
        description="`catalog`: sent for every ingested event; `client`: accepted by the relay; "
        "`service`: sent by Herald itself (the heartbeat)."
    )


class AnalyticsEventList(BaseModel):
    items: list[AnalyticsEventOut]
    next_cursor: None = None


def _error(loc: list[str | int], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": type_}


def _event_errors(name: Any) -> list[dict[str, Any]]:
    if not isinstance(name, str):
        return [_error(["event"], "Input should be a valid string", "string_type")]
    try:
        event = Event(name)
    except ValueError:
        shown = repr(name[:100])
        return [_error(["event"], f"unknown analytics event {shown}: expected one of {CLIENT_EVENT_NAMES}")]
    if event not in CLIENT_EVENTS:
        why = "catalog events are sent by ingest" if event_source(event) == "catalog" else "sent by Herald"
        return [_error(["event"], f"{name!r} is not a client-side analytics event ({why})")]
    return []


def _shape_errors(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Too deep, or text PostgreSQL and the backend cannot take (NUL); checked without recursion."""
    stack: list[tuple[int, Any]] = [(1, properties)]
    while stack:
        depth, value = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_PROPERTIES_DEPTH:
            msg = f"properties are nested deeper than {MAX_PROPERTIES_DEPTH} levels"
            return [_error(["properties"], msg)]
        if isinstance(value, dict):
            stack.extend((depth, key) for key in value)
            stack.extend((depth + 1, item) for item in value.values())
        elif isinstance(value, list):
            stack.extend((depth + 1, item) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            return [_error(["properties"], "text must not contain NUL characters")]
    return []


def _properties_errors(properties: Any) -> list[dict[str, Any]]:
    if properties is None:
        return []
    if not isinstance(properties, dict):
        return [_error(["properties"], "Input should be a valid dictionary (a JSON object)", "dict_type")]
    errors = _shape_errors(properties)
    if errors:
        return errors
    size = len(orjson.dumps(properties))
    if size > MAX_PROPERTIES_BYTES:
        return [
            _error(["properties"], f"properties are {size} bytes serialized; at most {MAX_PROPERTIES_BYTES}")
        ]
    return []


def validate_relay(raw: Any) -> tuple[Event, dict[str, Any]]:
    """The event and its properties, or :class:`InvalidInput` naming every bad field."""
    if not isinstance(raw, dict):
        raise InvalidInput([_error([], "Input should be a valid dictionary", "dict_type")])
    errors = [
        _error([key[:100]], "Extra inputs are not permitted", "extra_forbidden")
        for key in raw
        if key not in ("event", "properties")
    ]
    if "event" not in raw:
        errors.append(_error(["event"], "Field required", "missing"))
    else:
        errors += _event_errors(raw["event"])
    errors += _properties_errors(raw.get("properties"))
    if errors:
        raise InvalidInput(errors)
    return Event(raw["event"]), raw.get("properties") or {}


@router.post(
    "",
    status_code=202,
    summary="Relay a front-end telemetry event",
    description=(
        "Queues a client-side analytics event for the telemetry backend. Its `properties` become the "
        "event's `event_properties` (`derived_properties` is empty); relayed events do not appear in "
        "the events feed. Catalog events are sent by ingest and refused here (422). While telemetry "
        'is off the answer is `{"queued": false, "reason": ...}` and nothing is stored.'
    ),
    response_model=Queued,
    response_model_exclude_none=True,
    responses=error_responses(413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AnalyticsEventIn.model_json_schema()}},
        }
    },
)
async def relay_event(request: Request, state: StateDep) -> Response:
    event, properties = validate_relay(await read_json_body(request))
    reason = telemetry_off_reason(state.settings)
    if reason is not None:
        return json_response({"queued": False, "reason": reason}, 202)
    async with transaction(state.sessions, deadline_s=INGEST_DEADLINE_S) as session:
        await send_event(
            session,
            event,
            TelemetryData(event_properties=properties, derived_properties={}),
            telemetry_enabled=True,
            analytics_subscriber_uuid=state.installation.analytics_subscriber_uuid,
        )
    return json_response({"queued": True}, 202)


@router.get(
    "/events",
    summary="List the analytics event names",
    description="Every name of the analytics `Event` enumeration, with where it comes from.",
)
async def list_analytics_events() -> AnalyticsEventList:
    return AnalyticsEventList(
        items=[AnalyticsEventOut(name=event.value, source=event_source(event)) for event in Event]
    )
