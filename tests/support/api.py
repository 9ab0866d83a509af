"""Talking to a running Herald in tests: create webhooks, ingest events (status codes asserted)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from tests.support.event_samples import sample_event

HOOK_URL = "http://127.0.0.1:9/hook"
"""A URL nothing listens on (the discard port): deliveries to it are refused."""

EVERYTHING: list[dict[str, Any]] = [{"event_type": "*"}]


async def create_webhook(
    client: httpx.AsyncClient,
    url: str = HOOK_URL,
    *,
    subscriptions: list[dict[str, Any]] | None = None,
    name: str = "test hook",
    **fields: Any,
) -> dict[str, Any]:
    """Create a webhook (201 asserted; subscribed to every type unless ``subscriptions`` says
    otherwise) and return the answer, secret included."""
    body = {"name": name, "url": url, "subscriptions": EVERYTHING if subscriptions is None else subscriptions}
    response = await client.post("/api/v1/subscribers/webhooks", json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def event_of(type_name: str, project: str | None = None, job: str | None = None) -> dict[str, Any]:
    """A valid ingest body of ``type_name``, in project ``project`` / job ``job`` when given."""
    body = sample_event(type_name)
    if project is not None:
        body["project"]["uuid"] = project
    if job is not None:
        body["job"]["uuid"] = job
    return body


async def ingest(client: httpx.AsyncClient, body: dict[str, Any] | str = "project:created") -> dict[str, Any]:
    """Ingest ``body`` (or a sample event of that type) with 202 asserted; returns the answer."""
    response = await client.post("/api/v1/events", json=event_of(body) if isinstance(body, str) else body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def ingest_many(client: httpx.AsyncClient, count: int, type_name: str = "project:created") -> list[str]:
    """Ingest ``count`` events in batches; returns their uuids."""
    uuids: list[str] = []
    for start in range(0, count, 500):
        events = [sample_event(type_name) for _ in range(min(500, count - start))]
        response = await client.post("/api/v1/events/batch", json={"events": events})
        assert response.status_code == 202, response.text
        uuids += [event["uuid"] for event in events]
    return uuids


def new_uuid() -> str:
    return str(uuid4())
