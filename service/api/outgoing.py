"""The requests Herald sends, as OpenAPI 3.1 ``webhooks`` (docs/webhooks.md is the prose).

One entry per format and content type. Each example is made by the code that makes real
requests: a sample event is validated and rendered as ingest renders it, its body is produced
by ``render_body`` and signed by ``build_headers`` with a published example secret, so the
example's signature checks out and a receiver can test its verification against it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from service.common.formats import ContentType, Format
from service.delivery.formats import render_body
from service.delivery.signing import build_headers, user_agent
from service.models.events import event_class_for
from service.schemas.events import validate_event

# A published secret, for the examples only: a receiver can check its verification code against it.
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - an example, used by no webhook
EXAMPLE_TIMESTAMP = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
EXAMPLE_DELIVERY = "3f0c2b7e-9d41-4c8a-b5e6-2a7d9c1e4f80"
EXAMPLE_EVENT_UUID = UUID("7a1d5c3e-2b4f-4e6a-8c9d-0f1e2d3c4b5a")
EXAMPLE_WEBHOOK = {"uuid": "c4e8a2f6-1b3d-4f5a-9e7c-6d8b0a2c4e6f", "name": "CI failures", "type": "webhook"}
EXAMPLE_BODY = {
    "type": "project:one-off-job:pipeline-run:failed",
    "project": {"uuid": "8c2f1a36-4a53-4b1e-9a55-0b7f7f1f2d11", "name": "demo"},
    "job": {
        "uuid": "5d1b3c2e-8a57-4c1f-a1f4-2f6f0f5b9e21",
        "name": "nightly",
        "status": "STARTED",
        "pipeline_name": "train",
        "total_runs": 2,
    },
    "pipeline_run": {
        "uuid": "0e8f6a4b-6c3d-4f0a-9b7e-1c2d3e4f5a6b",
        "status": "FAILURE",
        "number": 0,
        "failed_steps": [{"uuid": "4b7e1c2d-3e4f-4a6b-8c9d-0e1f2a3b4c5d", "title": "Load"}],
    },
}

_HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "webhook-id": (
        "The event's uuid: the same on every attempt and redelivery (deduplicate on it).",
        {"type": "string", "format": "uuid"},
    ),
    "webhook-timestamp": (
        "Unix time of this attempt, whole seconds; refuse requests more than 5 minutes off.",
        {"type": "string", "pattern": "^[0-9]+$"},
    ),
    "webhook-signature": (
        '`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the '
        "base64-decoded part of the `whsec_` secret (Standard Webhooks). Two, space-separated, "
        "while a rotated secret is still valid: accept the request when one matches.",
        {"type": "string"},
    ),
    "herald-event-type": ("The event type, or `ping` for a test send.", {"type": "string"}),
    "herald-delivery-id": (
        "The delivery (this event on its way to this webhook): `GET /api/v1/deliveries/{uuid}`.",
        {"type": "string", "format": "uuid"},
    ),
    "herald-attempt": (
        "The attempt number, from 1 (it keeps counting across redeliveries).",
        {"type": "string", "pattern": "^[1-9][0-9]*$"},
    ),
    "user-agent": ("`Herald/<version>`.", {"type": "string"}),
}

_RESPONSES = {
    "2XX": {
        "description": "Delivered: any 2xx ends the delivery `delivered` (the body is kept, cut to 4 KiB)."
    },
    "410": {"description": "Gone: the delivery ends `failed` and the webhook is disabled."},
    "429": {
        "description": "Too many requests: retried later; a `Retry-After` (seconds or an HTTP date, "
        "at most 24 h) pauses every delivery of this webhook until then.",
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
    },
    "default": {
        "description": "Any other answer, a timeout or a connection error: retried on the schedule "
        "(`HERALD_RETRY_SCHEDULE`), then `failed` (the dead letter: redeliver or recover it)."
    },
}

_ENVELOPE_SCHEMA = {
    "type": "object",
    "required": ["delivered_for", "event"],
    "properties": {
        "delivered_for": {
            "type": "object",
            "description": "The webhook this request is for.",
            "required": ["uuid", "name", "type"],
            "properties": {
                "uuid": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "type": {"const": "webhook"},
            },
        },
        "event": {
            "type": "object",
            "description": "The notification payload, as `GET /api/v1/events/{uuid}` shows it.",
            "required": ["uuid", "type", "timestamp"],
            "properties": {
                "uuid": {"type": "string", "format": "uuid"},
                "type": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
            "additionalProperties": True,
        },
    },
}

_FORM_SCHEMA = {
    "type": "object",
    "required": ["delivered_for", "event"],
    "properties": {
        "delivered_for": {"type": "string", "description": "The `delivered_for` object, as JSON text."},
        "event": {"type": "string", "description": "The notification payload, as JSON text."},
    },
}


def _chat_schema(field: str, limit: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [field],
        "properties": {
            field: {
                "type": "string",
                "maxLength": limit,
                "description": "One sentence with the key facts; producer values escaped for the target.",
            }
        },
    }


# (entry name, format, content type, summary, body schema)
_ENTRIES: tuple[tuple[str, Format, ContentType, str, dict[str, Any]], ...] = (
    ("standard-json", "standard", "application/json", "A standard webhook, JSON", _ENVELOPE_SCHEMA),
    (
        "standard-form",
        "standard",
        "application/x-www-form-urlencoded",
        "A standard webhook, form-encoded (verify the raw bytes, then decode each field)",
        _FORM_SCHEMA,
    ),
    ("slack", "slack", "application/json", "A Slack incoming webhook", _chat_schema("text", 3000)),
    ("teams", "teams", "application/json", "A Microsoft Teams incoming webhook", _chat_schema("text", 3000)),
    ("discord", "discord", "application/json", "A Discord webhook", _chat_schema("content", 2000)),
)


def example_event() -> dict[str, Any]:
    """The sample event's notification payload, rendered as ingest renders it."""
    validated = validate_event(orjson.dumps(EXAMPLE_BODY))
    layer = event_class_for(validated.type)
    rendered = layer.notification_json(
        EXAMPLE_EVENT_UUID, validated.type, EXAMPLE_TIMESTAMP, validated.sections
    )
    payload: dict[str, Any] = orjson.loads(rendered)
    return payload


def example_request(fmt: Format, content_type: ContentType) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the example request of this format and content type, signed."""
    body = render_body(fmt, content_type, dict(EXAMPLE_WEBHOOK), example_event())
    headers = build_headers(
        secrets=[EXAMPLE_SECRET],
        event_uuid=str(EXAMPLE_EVENT_UUID),
        event_type=str(EXAMPLE_BODY["type"]),
        delivery_uuid=EXAMPLE_DELIVERY,
        attempt=1,
        timestamp=int(EXAMPLE_TIMESTAMP.timestamp()),
        body=body,
        content_type=content_type,
    )
    return body, headers


def _entry(name: str, fmt: Format, content_type: ContentType, summary: str, schema: dict[str, Any]) -> Any:
    body, headers = example_request(fmt, content_type)
    example: Any = orjson.loads(body) if content_type == "application/json" else body.decode("ascii")
    parameters = [
        {
            "name": header,
            "in": "header",
            "required": True,
            "description": description,
            "schema": header_schema,
            "example": user_agent() if header == "user-agent" else headers[header],
        }
        for header, (description, header_schema) in _HEADERS.items()
    ]
    description = (
        f"`format: {fmt}`, `content_type: {content_type}`. Sent as `POST` to the webhook's URL for "
        f"every matching event, one request per attempt. The example is signed with `{EXAMPLE_SECRET}`; "
        "the webhook's own `headers`, when set, are sent too. See docs/webhooks.md."
    )
    return {
        "post": {
            "summary": summary,
            "description": description,
            "operationId": f"webhook_{name.replace('-', '_')}",
            "tags": ["webhook requests"],
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "content": {content_type: {"schema": schema, "example": example}},
            },
            "responses": _RESPONSES,
        }
    }


def webhooks_section() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: one entry per format and content type."""
    return {name: _entry(name, fmt, ctype, summary, schema) for name, fmt, ctype, summary, schema in _ENTRIES}
