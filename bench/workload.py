"""What the benchmarks send: event bodies, and the rows the raw baselines write for them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson

from service.catalog import kind_of

# The event of the ingest and delivery figures: each matches the bench's three webhooks.
MAIN_TYPE = "project:one-off-job:pipeline-run:failed"
# One webhook each: idle latency, and the healthy endpoint beside a hanging one.
LATENCY_TYPE = "project:created"
ISOLATION_TYPE = "project:pipeline:created"

PROJECT_UUID = "5d0e3b0a-0c35-4a47-9d2f-6b2b8f0d6a11"
JOB_UUID = "9b7c1f2e-5a14-4c8e-8f61-2d7c0a9e3b42"
STEP_A = "b79d5045-0592-4e6c-a6ff-764916cb3745"
STEP_B = "fe4276c1-8b6c-4b12-830c-07d8f3bd04e6"
JSON_HEADERS = {"content-type": "application/json"}


def main_event(uuid: str | None = None) -> dict[str, Any]:
    """A one-off job's failed pipeline run (~0.9 KiB): a typical, fully filled event."""
    body: dict[str, Any] = {
        "type": MAIN_TYPE,
        "timestamp": "2026-01-02T04:05:06.123456+01:00",
        "project": {"uuid": PROJECT_UUID, "name": "churn model"},
        "job": {
            "uuid": JOB_UUID,
            "name": "nightly retrain",
            "status": "FAILURE",
            "pipeline_uuid": "c51ba182-2faf-4b30-837d-6ab62b32e276",
            "pipeline_name": "train",
            "total_runs": 3,
        },
        "pipeline_run": {
            "uuid": "81802fbc-bac8-4dfe-9c2e-976b06a5944c",
            "status": "FAILURE",
            "number": 1,
            "steps": [{"uuid": STEP_A, "title": "Load data"}, {"uuid": STEP_B, "title": "Train"}],
            "parameters": {
                STEP_A: {"path": "/data/churn.parquet", "nested": {"values": ["a", 1, True]}},
                STEP_B: {"epochs": 10, "name": "xgboost"},
                "pipeline_parameters": {"seed": "42"},
            },
            "failed_steps": [{"uuid": STEP_A, "title": "Load data"}],
        },
    }
    if uuid is not None:
        body["uuid"] = uuid
    return body


def simple_event(type_name: str, uuid: str | None = None) -> dict[str, Any]:
    """A ``project:*`` event with only the sections its type needs (project, pipeline)."""
    body: dict[str, Any] = {"type": type_name, "project": {"uuid": PROJECT_UUID, "name": "churn model"}}
    if type_name.startswith("project:pipeline:"):
        body["pipeline"] = {"uuid": "0c4a7d2e-3f65-4b1a-9e8d-7a6b5c4d3e2f", "name": "train"}
    if uuid is not None:
        body["uuid"] = uuid
    return body


# The custom type of the custom-type figures: ten fields, three of them required.
CUSTOM_TYPE = "order.placed"
CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "amount", "currency"],
    "additionalProperties": False,
    "properties": {
        "order_id": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "items": {"type": "integer", "minimum": 1},
        "customer": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "tier": {"type": "string"}},
            "required": ["id"],
        },
        "paid": {"type": "boolean"},
        "placed_at": {"type": "string"},
        "coupon": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "note": {"type": "string", "maxLength": 200},
    },
}


def custom_data() -> dict[str, Any]:
    """``data`` valid under ``CUSTOM_SCHEMA``, all ten fields given."""
    return {
        "order_id": "o-1",
        "amount": 12.5,
        "currency": "EUR",
        "items": 2,
        "customer": {"id": "c-7", "tier": "gold"},
        "paid": True,
        "placed_at": "2026-01-02T03:04:05Z",
        "coupon": None,
        "tags": ["web", "first"],
        "note": "leave at the door",
    }


def custom_event(uuid: str | None = None) -> dict[str, Any]:
    """An event of ``CUSTOM_TYPE`` in the bench's project."""
    body: dict[str, Any] = {"type": CUSTOM_TYPE, "project_uuid": PROJECT_UUID, "data": custom_data()}
    if uuid is not None:
        body["uuid"] = uuid
    return body


def batch_body(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": events})


# -- the raw baselines' rows ----------------------------------------------------------------------

EVENT_COLUMNS = (
    "uuid",
    "type",
    "kind",
    "timestamp",
    "project_uuid",
    "pipeline_uuid",
    "job_uuid",
    "pipeline_run_uuid",
    "sections",
    "payload",
)
DELIVERY_COLUMNS = ("uuid", "event_uuid", "event_type", "subscriber_uuid", "subscriber_kind", "payload")


def event_row(body: dict[str, Any], uuid: UUID, received: datetime) -> tuple[Any, ...]:
    """The events row of ``body`` (as ``EVENT_COLUMNS``), its payload the body with uuid and time."""
    sections = {k: v for k, v in body.items() if k not in ("type", "uuid", "timestamp")}
    timestamp = datetime.fromisoformat(body["timestamp"]) if "timestamp" in body else received

    def entity(section: str, key: str = "uuid") -> UUID | None:
        value = sections.get(section, {}).get(key)
        return UUID(value) if value is not None else None

    payload = {"uuid": str(uuid), "type": body["type"], "timestamp": timestamp.isoformat(), **sections}
    return (
        uuid,
        body["type"],
        kind_of(body["type"]),
        timestamp,
        entity("project"),
        entity("pipeline") or entity("job", "pipeline_uuid"),
        entity("job"),
        entity("pipeline_run"),
        orjson.dumps(sections).decode(),
        orjson.dumps(payload).decode(),
    )


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def copy_rows(bodies: list[dict[str, Any]], subscribers: list[UUID]) -> Rows:
    """Events rows and one delivery row per (event, subscriber), as a COPY baseline writes them."""
    now = datetime.now(UTC)
    events = [event_row(body, uuid4(), now) for body in bodies]
    deliveries = [
        (uuid4(), row[0], row[1], subscriber, "webhook", row[9])
        for row in events
        for subscriber in subscribers
    ]
    return events, deliveries
