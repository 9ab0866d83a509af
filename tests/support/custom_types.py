"""Custom event types in tests: a ten-field schema, creating a type, a valid event of it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from bench.workload import CUSTOM_SCHEMA, custom_data

EVENT_TYPES = "/api/v1/event-types"

ORDER_SCHEMA = CUSTOM_SCHEMA
"""Ten fields, three required: the schema of the bench (bench/workload.py) and of the tests."""


def order_data(**overrides: Any) -> dict[str, Any]:
    """``data`` valid under ``ORDER_SCHEMA`` (all ten fields given)."""
    return custom_data() | overrides


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
