"""Helpers shared by the subscriber, matching and delivery API tests."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from tests.event_samples import sample_event

HOOK_URL = "http://127.0.0.1:9/hook"


async def create_webhook(
    client: httpx.AsyncClient, subscriptions: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    """Create a webhook (201 asserted) and return the answer."""
    body: dict[str, Any] = {"name": "hook", "url": HOOK_URL, "subscriptions": subscriptions or []}
    body.update(fields)
    response = await client.post("/api/v1/subscribers/webhooks", json=body)
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


async def ingest(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Ingest one event (202 asserted) and return the answer."""
    response = await client.post("/api/v1/events", json=body)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def new_uuid() -> str:
    return str(uuid4())
