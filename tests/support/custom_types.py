"""Custom event types in tests: a ten-field schema, creating a type, a valid event of it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

EVENT_TYPES = "/api/v1/event-types"

ORDER_SCHEMA: dict[str, Any] = {
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
"""Ten fields, three required: the schema of the tests and of the bench."""


def order_data(**overrides: Any) -> dict[str, Any]:
    """``data`` valid under ``ORDER_SCHEMA`` (all ten fields given)."""
    data: dict[str, Any] = {
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
    return data | overrides


def custom_event(type_name: str = "order.placed", project: str | None = None, **data: Any) -> dict[str, Any]:
    """A valid ingest body of a custom type with ``ORDER_SCHEMA`` (a fresh uuid)."""
    body: dict[str, Any] = {"type": type_name, "uuid": str(uuid4()), "data": order_data(**data)}
    if project is not None:
        body["project_uuid"] = project
    return body


async def create_type(
    client: httpx.AsyncClient, name: str = "order.placed", schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create a custom type (201 asserted; ``ORDER_SCHEMA`` unless told otherwise)."""
    body = {"name": name, "description": "An order was placed.", "schema": schema or ORDER_SCHEMA}
    response = await client.post(EVENT_TYPES, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
