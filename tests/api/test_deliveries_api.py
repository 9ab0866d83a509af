"""Deliveries through the HTTP API: the filtered, paginated list and one delivery with attempts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

DELIVERIES = "/api/v1/deliveries"


async def _pages(herald: RunningApp, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await herald.client.get(DELIVERIES, params=query)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_the_list_is_newest_first_in_cursor_pages_with_filters(herald: RunningApp) -> None:
    client = herald.client
    first = await create_webhook(client, subscriptions=[{"event_type": "*"}])
    second = await create_webhook(client, subscriptions=[{"event_type": "project:created"}])
    answers = [
        await ingest(client, event_of(t)) for t in ("project:created", "project:deleted", "project:created")
    ]

    pages = await _pages(herald, limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [item for page in pages for item in page]
    assert [item["event_uuid"] for item in listed] == [
        answers[2]["uuid"],
        answers[2]["uuid"],
        answers[1]["uuid"],
        answers[0]["uuid"],
        answers[0]["uuid"],
    ]
    assert set(listed[0]) == {
        "uuid",
        "event_uuid",
        "event_type",
        "subscriber_uuid",
        "status",
        "attempts_count",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "created_at",
    }
    assert listed[0]["status"] == "pending"
    assert listed[0]["attempts_count"] == 0

    by_second = (await client.get(DELIVERIES, params={"subscriber_uuid": second["uuid"]})).json()["items"]
    assert [item["event_uuid"] for item in by_second] == [answers[2]["uuid"], answers[0]["uuid"]]
    by_event = (await client.get(DELIVERIES, params={"event_uuid": answers[1]["uuid"]})).json()["items"]
    assert [item["subscriber_uuid"] for item in by_event] == [first["uuid"]]
    both = await client.get(
        DELIVERIES, params={"event_uuid": answers[0]["uuid"], "subscriber_uuid": first["uuid"]}
    )
    assert len(both.json()["items"]) == 1
    by_pages = await _pages(herald, limit=1, subscriber_uuid=first["uuid"])
    assert [len(page) for page in by_pages] == [1, 1, 1]


async def test_the_list_filters_by_status(herald: RunningApp, db: asyncpg.Connection) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    answers = [await ingest(herald.client, event_of("project:created")) for _ in range(3)]
    await db.execute(
        "UPDATE deliveries SET status = 'delivered', delivered_at = now(), attempts_count = 1 "
        "WHERE event_uuid = $1",
        answers[1]["uuid"],
    )
    delivered = (await herald.client.get(DELIVERIES, params={"status": "delivered"})).json()["items"]
    assert [item["event_uuid"] for item in delivered] == [answers[1]["uuid"]]
    assert delivered[0]["delivered_at"] is not None
    pending = (await herald.client.get(DELIVERIES, params={"status": "pending"})).json()["items"]
    assert len(pending) == 2
    assert (await herald.client.get(DELIVERIES, params={"status": "cancelled"})).json()["items"] == []


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"status": "lost"}, ["query", "status"]),
        ({"subscriber_uuid": "nope"}, ["query", "subscriber_uuid"]),
        ({"event_uuid": "nope"}, ["query", "event_uuid"]),
        ({"limit": 501}, ["query", "limit"]),
        ({"cursor": "%%%"}, ["query", "cursor"]),
    ],
)
async def test_bad_list_parameters_are_422(
    herald: RunningApp, params: dict[str, Any], loc: list[str]
) -> None:
    response = await herald.client.get(DELIVERIES, params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_one_delivery_shows_its_attempts_in_order(herald: RunningApp, db: asyncpg.Connection) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    answer = await ingest(herald.client, event_of("project:created"))
    delivery_uuid = await db.fetchval("SELECT uuid FROM deliveries WHERE event_uuid = $1", answer["uuid"])
    long_body = "é" * 5000  # 10,000 bytes of two-byte characters
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for number, status_code, error, body in (
        (2, 503, "receiver answered 503 Service Unavailable", long_body),
        (1, None, "connection refused", None),
        (3, 200, None, "ok"),
    ):
        await db.execute(
            "INSERT INTO delivery_attempts (delivery_uuid, number, started_at, duration_ms, status_code, "
            "error, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            delivery_uuid,
            number,
            started,
            12.5,
            status_code,
            error,
            body,
        )
    await db.execute(
        "UPDATE deliveries SET status = 'delivered', attempts_count = 3, delivered_at = now() "
        "WHERE uuid = $1",
        delivery_uuid,
    )
    response = await herald.client.get(f"{DELIVERIES}/{delivery_uuid}")
    assert response.status_code == 200
    detail = response.json()
    assert detail["uuid"] == str(delivery_uuid)
    assert detail["status"] == "delivered"
    assert detail["attempts_count"] == 3
    attempts = detail["attempts"]
    assert [attempt["number"] for attempt in attempts] == [1, 2, 3]
    assert set(attempts[0]) == {
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_body",
    }
    assert attempts[0]["status_code"] is None
    assert attempts[0]["error"] == "connection refused"
    assert attempts[1]["status_code"] == 503
    assert len(attempts[1]["response_body"].encode()) <= 4096
    assert attempts[1]["response_body"] == "é" * 2048
    assert attempts[2]["response_body"] == "ok"
    assert attempts[2]["duration_ms"] == 12.5


async def test_a_delivery_without_attempts_has_an_empty_history(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    answer = await ingest(herald.client, event_of("project:created"))
    [item] = (await herald.client.get(DELIVERIES, params={"event_uuid": answer["uuid"]})).json()["items"]
    detail = (await herald.client.get(f"{DELIVERIES}/{item['uuid']}")).json()
    assert detail == {**item, "attempts": []}


async def test_unknown_and_malformed_delivery_uuids(herald: RunningApp) -> None:
    unknown = new_uuid()
    response = await herald.client.get(f"{DELIVERIES}/{unknown}")
    assert response.status_code == 404
    assert unknown in response.json()["detail"]
    malformed = await herald.client.get(f"{DELIVERIES}/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "uuid"]


async def test_deliveries_of_a_deleted_subscriber_stay_listable(herald: RunningApp) -> None:
    hook = await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    await ingest(herald.client, event_of("project:created"))
    assert (await herald.client.delete(f"/api/v1/subscribers/{hook['uuid']}")).status_code == 204
    [item] = (await herald.client.get(DELIVERIES, params={"subscriber_uuid": hook["uuid"]})).json()["items"]
    assert item["status"] == "cancelled"
    assert item["next_attempt_at"] is None
    detail = await herald.client.get(f"{DELIVERIES}/{item['uuid']}")
    assert detail.json()["status"] == "cancelled"
    cancelled = (await herald.client.get(DELIVERIES, params={"status": "cancelled"})).json()["items"]
    assert [c["uuid"] for c in cancelled] == [item["uuid"]]
