"""Delivery outcomes: retries on the schedule, Retry-After, dead letter, 410, auto-disable, fairness."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory
from tests.support.db import (
    FAST,
    attempts_of,
    delivery_of,
    eventually,
    statuses,
    subscriber_row,
    wait_for_statuses,
)
from tests.support.event_samples import sample_event
from tests.support.receiver import Receiver, Reply, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def test_failed_delivery_is_retried_on_the_schedule_until_delivered(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", Reply(500, body=b"boom"), Reply(302, headers={"location": "/elsewhere"}))
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
        requests = await receiver.wait_for(3)
        await wait_for_statuses(db, {"delivered": 1})
    assert [r.attempt for r in requests] == [1, 2, 3]
    assert {r.webhook_id for r in requests} == {event["uuid"]}
    # Waits of 100 ms then 200 ms, each ±20 %.
    gaps = [later.at_monotonic - earlier.at_monotonic for earlier, later in itertools.pairwise(requests)]
    assert gaps[0] >= 0.08
    assert gaps[1] >= 0.16
    delivery = await delivery_of(db, event["uuid"], hook["uuid"])
    assert delivery["attempts_count"] == 3
    assert delivery["delivered_at"] is not None
    assert delivery["last_error"] is None
    attempts = await attempts_of(db, delivery["uuid"])
    assert [(a["number"], a["status_code"]) for a in attempts] == [(1, 500), (2, 302), (3, 200)]
    assert attempts[0]["response_body"] == "boom"
    assert attempts[1]["error"] is None
    assert all(a["duration_ms"] >= 0 for a in attempts)
    subscriber = await subscriber_row(db, hook["uuid"])
    assert subscriber["last_success_at"] is not None
    assert subscriber["failing_since"] is None


async def test_delivery_fails_after_the_last_scheduled_attempt(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", then=Reply(500))
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 1})
    delivery = await delivery_of(db, event["uuid"], hook["uuid"])
    assert delivery["attempts_count"] == 3
    assert delivery["last_error"] == "HTTP 500"
    assert delivery["next_attempt_at"] is None
    assert len(receiver.requests) == 3
    subscriber = await subscriber_row(db, hook["uuid"])
    assert subscriber["failing_since"] is not None
    assert subscriber["enabled"]


async def test_retry_after_replaces_the_scheduled_wait(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply(
        "/hook", Reply(429, headers={"retry-after": "1"}), Reply(503, headers={"retry-after": "0"})
    )
    async with app_factory(**FAST) as herald:
        await create_webhook(herald.client, receiver.url())
        await ingest(herald.client)
        requests = await receiver.wait_for(3, timeout_s=5)
        await wait_for_statuses(db, {"delivered": 1})
    assert requests[1].at_monotonic - requests[0].at_monotonic >= 0.95  # not the 100 ms of the schedule
    assert requests[2].at_monotonic - requests[1].at_monotonic < 0.15  # "0": at once, not 200 ms ±20 %


async def test_connection_errors_are_retried_with_a_reason(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, "http://127.0.0.1:9/hook")  # discard port: refused
        event = await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 1})
    delivery = await delivery_of(db, event["uuid"], hook["uuid"])
    assert delivery["last_error"] == "connection refused"
    attempts = await attempts_of(db, delivery["uuid"])
    assert [(a["status_code"], a["error"]) for a in attempts] == [(None, "connection refused")] * 3


async def test_private_destination_is_refused_at_delivery(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory() as herald:  # allowed when the webhook was created...
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
    async with app_factory(**FAST | {"allow_private_destinations": False}):  # ...but not any more
        await wait_for_statuses(db, {"failed": 1})
    assert receiver.requests == []
    delivery = await delivery_of(db, event["uuid"], hook["uuid"])
    assert "127.0.0.1" in delivery["last_error"]
    assert "refused" in delivery["last_error"]
    assert str(receiver.port) not in delivery["last_error"]


async def test_gone_disables_the_subscriber_and_fails_its_pending_deliveries(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", Reply(410, delay_s=0.2))
    async with app_factory(**FAST | {"delivery_per_subscriber_concurrency": 1}) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        first = await ingest(herald.client)
        await receiver.wait_for(1)
        await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 2}, hook["uuid"])
        listed = (await herald.client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()
    assert len(receiver.requests) == 1
    assert listed["enabled"] is False
    assert listed["disabled_reason"] == "http://127.0.0.1 answered HTTP 410 Gone"
    gone = await delivery_of(db, first["uuid"], hook["uuid"])
    assert gone["last_error"] == "HTTP 410 Gone"
    errors = await db.fetch("SELECT last_error FROM deliveries WHERE uuid <> $1", gone["uuid"])
    assert [row["last_error"] for row in errors] == ["subscriber disabled"]


async def test_subscriber_failing_longer_than_the_limit_is_disabled(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", then=Reply(500))
    settings = FAST | {"retry_schedule": "100ms,100ms,100ms,100ms,100ms,100ms", "disable_after_seconds": 0.25}
    async with app_factory(**settings) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        await ingest(herald.client)

        async def disabled() -> bool:
            return not await db.fetchval(
                "SELECT enabled FROM subscribers WHERE uuid = $1::uuid", hook["uuid"]
            )

        await eventually(disabled, timeout_s=5)
        await wait_for_statuses(db, {"failed": 1}, hook["uuid"])
    reason = await db.fetchval("SELECT disabled_reason FROM subscribers WHERE uuid = $1::uuid", hook["uuid"])
    assert reason.startswith("failing continuously since ")
    assert reason.endswith("last error: HTTP 500")
    # Disabled before the schedule ran out (by the fourth attempt, 0.3 s after the first), after
    # a retry at least: on a loaded machine the second may already come 0.25 s after the first.
    assert 2 <= len(receiver.requests) < 7


async def test_hanging_endpoint_holds_only_its_window(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hang", then=Reply(hang=True))
    settings = FAST | {
        "delivery_concurrency": 4,
        "delivery_per_subscriber_concurrency": 2,
        "delivery_timeout_seconds": 30,
        "lease_seconds": 60,
        "shutdown_grace_seconds": 0.1,
    }
    async with app_factory(**settings) as herald:
        hanging = await create_webhook(herald.client, receiver.url("/hang"), name="hanging")
        healthy = await create_webhook(herald.client, receiver.url("/ok"), name="healthy")
        for _ in range(20):
            await ingest(herald.client)
        await wait_for_statuses(db, {"delivered": 20}, healthy["uuid"])
        # Never answered, the hanging one stays at its first window (one request) of its bound
        # of two; the rest of its rows wait in the table.
        assert len(receiver.on("/hang")) == 1
        assert await statuses(db, hanging["uuid"]) == {"delivering": 1, "pending": 19}
    # Stopping gave the hanging attempt its grace, then handed it back, due now.
    assert await statuses(db, hanging["uuid"]) == {"pending": 20}
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE lease_token IS NOT NULL") == 0


async def test_delivery_in_flight_when_its_subscriber_is_deleted_ends_cancelled(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", Reply(200, delay_s=0.5))
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, receiver.url())
        event = await ingest(herald.client)
        await receiver.wait_for(1)
        deleted = await herald.client.delete(f"/api/v1/subscribers/{hook['uuid']}")
        assert deleted.status_code == 204
        await eventually(lambda: _attempts_recorded(db, 1), timeout_s=5)
    delivery = await delivery_of(db, event["uuid"], hook["uuid"])
    assert delivery["status"] == "cancelled"
    assert delivery["delivered_at"] is None


async def _attempts_recorded(db: asyncpg.Connection, count: int) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM delivery_attempts") >= count)


async def test_every_delivery_of_a_burst_arrives_once(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST | {"delivery_per_subscriber_concurrency": 3}) as herald:
        hooks = [await create_webhook(herald.client, receiver.url(f"/h{i}")) for i in range(3)]
        response = await herald.client.post(
            "/api/v1/events/batch", json={"events": [sample_event("project:created") for _ in range(100)]}
        )
        assert response.status_code == 202
        await wait_for_statuses(db, {"delivered": 300})
    for i, hook in enumerate(hooks):
        received = receiver.on(f"/h{i}")
        assert len({r.webhook_id for r in received}) == len(received) == 100
        assert {json.loads(r.body)["delivered_for"]["uuid"] for r in received} == {hook["uuid"]}
