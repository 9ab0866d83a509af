"""``test`` pings, ``redeliver`` and ``recover``: the routes that act on deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from standardwebhooks import Webhook

from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, attempts_of, delivery_of, wait_for_statuses
from tests.support.receiver import Receiver, Reply, running_receiver

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

DEAD_LETTER = FAST | {"retry_schedule": "50ms"}  # two attempts, then failed


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def _analytics_uuid(db: asyncpg.Connection) -> str:
    return str(await db.fetchval("SELECT uuid FROM subscribers WHERE kind = 'analytics'"))


# -- test -------------------------------------------------------------------------------------


async def test_ping_is_signed_and_answers_ok(
    herald: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", Reply(200, delay_s=0.05))
    hook = await create_webhook(herald.client, receiver.url())
    started = time.perf_counter()
    response = await herald.client.post(f"/api/v1/subscribers/{hook['uuid']}/test")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is True
    assert answer["status_code"] == 200
    assert answer["error"] is None
    # The receiver takes 50 ms to answer: the duration is the attempt's, within the request's.
    assert 50 <= answer["duration_ms"] <= elapsed_ms
    [request] = receiver.requests
    event = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert event["event"]["type"] == "ping"
    assert event["event"]["uuid"] == request.headers["webhook-id"]
    assert event["delivered_for"]["uuid"] == hook["uuid"]
    assert request.headers["herald-event-type"] == "ping"
    assert request.headers["herald-attempt"] == "1"
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_ping_reports_a_failing_or_unreachable_receiver(herald: RunningApp, receiver: Receiver) -> None:
    receiver.reply("/hook", Reply(500))
    hook = await create_webhook(herald.client, receiver.url())
    answer = (await herald.client.post(f"/api/v1/subscribers/{hook['uuid']}/test")).json()
    assert (answer["ok"], answer["status_code"], answer["error"]) == (False, 500, "HTTP 500")
    dead = await create_webhook(herald.client, "http://127.0.0.1:9/hook")
    answer = (await herald.client.post(f"/api/v1/subscribers/{dead['uuid']}/test")).json()
    assert (answer["ok"], answer["status_code"], answer["error"]) == (False, None, "connection refused")


async def test_ping_of_the_analytics_subscriber_or_an_unknown_one_is_refused(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    analytics = await _analytics_uuid(db)
    assert (await herald.client.post(f"/api/v1/subscribers/{analytics}/test")).status_code == 409
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await herald.client.post(f"/api/v1/subscribers/{unknown}/test")).status_code == 404
    assert (await herald.client.post("/api/v1/subscribers/not-a-uuid/test")).status_code == 422


async def test_ping_before_creation_stores_nothing(
    herald: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    before = await db.fetchval("SELECT count(*) FROM subscribers")
    body = {"name": "new", "url": receiver.url(), "format": "discord", "subscriptions": [{"event_type": "*"}]}
    response = await herald.client.post("/api/v1/subscribers/webhooks/test", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert await db.fetchval("SELECT count(*) FROM subscribers") == before
    [request] = receiver.requests
    assert "ping" in json.loads(request.body)["content"]


async def test_ping_before_creation_validates_the_body_as_create_does(herald: RunningApp) -> None:
    bad = {"name": "new", "url": "ftp://example.com/", "subscriptions": []}
    response = await herald.client.post("/api/v1/subscribers/webhooks/test", json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "url"]
    chat_form = {
        "name": "n",
        "url": "http://127.0.0.1:9/",
        "format": "slack",
        "content_type": "application/x-www-form-urlencoded",
    }
    assert (await herald.client.post("/api/v1/subscribers/webhooks/test", json=chat_form)).status_code == 422


async def test_ping_before_creation_refuses_private_destinations(app_factory: AppFactory) -> None:
    async with app_factory(allow_private_destinations=False) as herald:
        body = {"name": "new", "url": "http://10.1.2.3/hook"}
        response = await herald.client.post("/api/v1/subscribers/webhooks/test", json=body)
    assert response.status_code == 422


# -- redeliver and recover ---------------------------------------------------------------------


async def test_dead_letter_then_redeliver_continues_the_attempt_count(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", Reply(500), Reply(500))
    async with app_factory(**DEAD_LETTER) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 1})
        delivery = await delivery_of(db, event["uuid"], hook["uuid"])
        response = await herald.client.post(f"/api/v1/deliveries/{delivery['uuid']}/redeliver")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        assert response.json()["attempts_count"] == 2
        await wait_for_statuses(db, {"delivered": 1})
        # Delivered already: redelivering sends it once more.
        assert (
            await herald.client.post(f"/api/v1/deliveries/{delivery['uuid']}/redeliver")
        ).status_code == 202
        await receiver.wait_for(4)
        await wait_for_statuses(db, {"delivered": 1})
    assert [r.attempt for r in receiver.requests] == [1, 2, 3, 4]
    attempts = await attempts_of(db, delivery["uuid"])
    assert [(a["number"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200), (4, 200)]


async def test_redelivered_dead_letter_gets_one_more_attempt(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", then=Reply(503))
    async with app_factory(**DEAD_LETTER) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 1})
        delivery = await delivery_of(db, event["uuid"], hook["uuid"])
        await herald.client.post(f"/api/v1/deliveries/{delivery['uuid']}/redeliver")
        await receiver.wait_for(3)
        await wait_for_statuses(db, {"failed": 1})
    row = await delivery_of(db, event["uuid"], hook["uuid"])
    assert row["attempts_count"] == 3
    assert len(receiver.requests) == 3


async def test_recover_makes_failed_deliveries_of_the_window_due_again(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", *[Reply(500)] * 6)
    async with app_factory(**DEAD_LETTER) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        for _ in range(3):
            await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 3})
        url = f"/api/v1/subscribers/{hook['uuid']}/recover"
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        response = await herald.client.post(url, json={"since": later})
        assert response.json() == {"scheduled": 0}
        earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        response = await herald.client.post(url, json={"since": earlier, "until": later})
        assert response.status_code == 202
        assert response.json() == {"scheduled": 3}
        await wait_for_statuses(db, {"delivered": 3})
    assert sorted(r.attempt for r in receiver.requests) == [1, 1, 1, 2, 2, 2, 3, 3, 3]


async def test_recover_refuses_bad_windows_disabled_and_analytics_subscribers(
    herald: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    hook = await create_webhook(herald.client, receiver.url())
    url = f"/api/v1/subscribers/{hook['uuid']}/recover"
    now = datetime.now(UTC)
    assert (await herald.client.post(url, json={})).status_code == 422
    assert (await herald.client.post(url, json={"since": "2026-01-01T00:00:00"})).status_code == 422  # naive
    backwards = {"since": now.isoformat(), "until": (now - timedelta(seconds=1)).isoformat()}
    assert (await herald.client.post(url, json=backwards)).status_code == 422
    await herald.client.patch(f"/api/v1/subscribers/{hook['uuid']}", json={"enabled": False})
    assert (await herald.client.post(url, json={"since": now.isoformat()})).status_code == 409
    analytics = await _analytics_uuid(db)
    response = await herald.client.post(
        f"/api/v1/subscribers/{analytics}/recover", json={"since": now.isoformat()}
    )
    assert response.status_code == 409
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await herald.client.post(
        f"/api/v1/subscribers/{unknown}/recover", json={"since": now.isoformat()}
    )
    assert response.status_code == 404


async def test_redeliver_refuses_in_flight_cancelled_and_disabled(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hang", Reply(200, delay_s=1.0))
    async with app_factory(**FAST) as herald:
        hanging = await create_webhook(herald.client, receiver.url("/hang"))
        event = await ingest(herald.client)
        await receiver.wait_for(1)
        in_flight = await delivery_of(db, event["uuid"], hanging["uuid"])
        response = await herald.client.post(f"/api/v1/deliveries/{in_flight['uuid']}/redeliver")
        assert response.status_code == 409
        assert "right now" in response.json()["detail"]
        await wait_for_statuses(db, {"delivered": 1})
        await herald.client.patch(f"/api/v1/subscribers/{hanging['uuid']}", json={"enabled": False})
        response = await herald.client.post(f"/api/v1/deliveries/{in_flight['uuid']}/redeliver")
        assert response.status_code == 409
        assert "disabled" in response.json()["detail"]
        await herald.client.patch(f"/api/v1/subscribers/{hanging['uuid']}", json={"enabled": True})
    async with app_factory() as herald:  # dispatcher off: the next one stays pending
        other = await create_webhook(herald.client, receiver.url("/other"))
        event = await ingest(herald.client)
        pending = await delivery_of(db, event["uuid"], other["uuid"])
        assert (await herald.client.delete(f"/api/v1/subscribers/{other['uuid']}")).status_code == 204
        response = await herald.client.post(f"/api/v1/deliveries/{pending['uuid']}/redeliver")
        assert response.status_code == 409
        unknown = "00000000-0000-4000-8000-000000000000"
        assert (await herald.client.post(f"/api/v1/deliveries/{unknown}/redeliver")).status_code == 404
