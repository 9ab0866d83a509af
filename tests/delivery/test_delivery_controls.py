"""Delivery controls held by two dispatchers on one database: rate limit, order, bound, pause."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from service.delivery.dispatcher import Dispatcher
from tests.support.api import create_webhook, ingest, ingest_many
from tests.support.app import AppFactory
from tests.support.db import FAST, wait_for_statuses
from tests.support.receiver import Receiver, Reply, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def test_a_rate_limit_holds_across_two_dispatchers_and_holds_up_no_other_webhook(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    settings = FAST | {"poll_interval_seconds": 1.0}  # the claims must wake for the slots themselves
    async with app_factory(**settings) as first, app_factory(**settings) as second:
        await create_webhook(first.client, receiver.url("/limited"), rate_limit_per_minute=600)
        await create_webhook(first.client, receiver.url("/free"))
        await ingest_many(second.client, 40)
        free = await receiver.wait_for(40, "/free", timeout_s=5)
        received = await receiver.wait_for(33, "/limited", timeout_s=8)
        await wait_for_statuses(db, {"delivered": 80}, timeout_s=10)
    start = received[0].at_monotonic
    # The other webhook got everything while the limited one had its first second's worth.
    assert free[-1].at_monotonic - start < 1.5
    times = [r.at_monotonic - start for r in receiver.on("/limited")]
    # A burst of at most 3, then 10 a second: after the burst, 30 requests in about 3 s.
    steady_per_s = 30 / (times[32] - times[2])
    assert 8.0 <= steady_per_s <= 12.0, steady_per_s
    for window_start in times:
        in_window = [t for t in times if window_start <= t < window_start + 1.0]
        assert len(in_window) <= 3 + 10 + 1, (window_start, len(in_window))  # 1: sending jitter


async def test_an_ordered_webhook_receives_in_recording_order_and_a_retry_holds_the_later_ones(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    # The third request fails once: the later deliveries wait for its retry.
    receiver.reply("/ordered", Reply(200), Reply(200), Reply(500), then=Reply(200, delay_s=0.01))
    async with app_factory(**FAST) as first, app_factory(**FAST) as second:
        hook = await create_webhook(first.client, receiver.url("/ordered"), ordered=True)
        events = [(await ingest(second.client))["uuid"] for _ in range(12)]
        await wait_for_statuses(db, {"delivered": 12}, hook["uuid"], timeout_s=10)
    requests = receiver.on("/ordered")
    assert [r.webhook_id for r in requests] == events[:3] + events[2:]
    assert [r.attempt for r in requests][2:4] == [1, 2]
    assert receiver.peak_in_flight == 1


async def test_a_redelivered_delivery_of_an_ordered_webhook_goes_before_the_waiting_ones(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory() as herald:  # dispatcher off: the queue is set up first
        hook = await create_webhook(herald.client, receiver.url("/ordered"), ordered=True)
        events = [(await ingest(herald.client))["uuid"] for _ in range(4)]
        # The first delivery was delivered long ago; the others wait.
        await db.execute(
            "UPDATE deliveries SET status = 'delivered', delivered_at = now(), next_attempt_at = NULL "
            "WHERE event_uuid = $1::uuid",
            events[0],
        )
        first = await db.fetchval("SELECT uuid FROM deliveries WHERE event_uuid = $1::uuid", events[0])
        response = await herald.client.post(f"/api/v1/deliveries/{first}/redeliver")
        assert response.status_code in (200, 202), response.text
    async with app_factory(**FAST) as one, app_factory(**FAST):
        await wait_for_statuses(db, {"delivered": 4}, hook["uuid"], timeout_s=10)
        del one
    assert [r.webhook_id for r in receiver.on("/ordered")] == events


async def test_the_per_subscriber_bound_holds_across_two_dispatchers(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/slow", then=Reply(200, delay_s=0.25))
    settings = FAST | {"delivery_per_subscriber_concurrency": 4}
    async with app_factory(**settings) as first, app_factory(**settings) as second:
        await create_webhook(first.client, receiver.url("/slow"))
        await ingest_many(second.client, 40)
        await wait_for_statuses(db, {"delivered": 40}, timeout_s=10)
        dispatchers = [app.state.dispatcher for app in (first, second)]
        claimed = [d.stats().counters.get("claimed", 0) for d in dispatchers if isinstance(d, Dispatcher)]
    assert receiver.peak_in_flight == 4
    assert sum(claimed) == 40


async def test_a_retry_after_pauses_the_whole_webhook_and_no_other(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/paused", Reply(429, headers={"Retry-After": "2"}))
    async with app_factory(**FAST) as first, app_factory(**FAST) as second:
        paused = await create_webhook(first.client, receiver.url("/paused"))
        await create_webhook(
            first.client, receiver.url("/other"), subscriptions=[{"event_type": "project:*"}]
        )
        await ingest(second.client)
        refused = (await receiver.wait_for(2, timeout_s=5))[0]  # the 429, and the other webhook's
        await wait_for_statuses(db, {"pending": 1}, paused["uuid"])
        shown = (await first.client.get(f"/api/v1/subscribers/{paused['uuid']}")).json()
        assert shown["paused_until"] is not None
        more = await ingest_many(second.client, 5)
        other = await receiver.wait_for(6, "/other", timeout_s=3)
        assert other[-1].at_monotonic - refused.at_monotonic < 1.5
        assert len(receiver.on("/paused")) == 1
        await wait_for_statuses(db, {"delivered": 6}, paused["uuid"], timeout_s=8)
    after = receiver.on("/paused")[1:]
    assert len(after) == 6
    assert min(r.at_monotonic for r in after) - refused.at_monotonic >= 1.9
    assert {r.webhook_id for r in after} >= set(more)


async def test_lifting_a_rate_limit_sends_the_deliveries_that_waited_for_it_at_once(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, receiver.url("/slow"), rate_limit_per_minute=1)
        await ingest_many(herald.client, 8)
        await receiver.wait_for(3, "/slow", timeout_s=5)  # the burst; the next slot is a minute away
        parked = await db.fetchval(
            "SELECT count(*) FROM deliveries WHERE status = 'pending' AND throttled "
            "AND subscriber_uuid = $1::uuid",
            hook["uuid"],
        )
        assert parked == 5
        response = await herald.client.patch(
            f"/api/v1/subscribers/{hook['uuid']}", json={"rate_limit_per_minute": None}
        )
        assert response.status_code == 200, response.text
        await receiver.wait_for(8, "/slow", timeout_s=5)
        await wait_for_statuses(db, {"delivered": 8}, hook["uuid"], timeout_s=5)
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE throttled AND status = 'pending'") == 0


async def test_an_ordered_rate_limited_webhook_keeps_its_order_and_its_rate(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    settings = FAST | {"poll_interval_seconds": 1.0}  # the claims must wake for the slots themselves
    async with app_factory(**settings) as first, app_factory(**settings) as second:
        hook = await create_webhook(
            first.client, receiver.url("/both"), ordered=True, rate_limit_per_minute=600
        )
        events = [(await ingest(second.client))["uuid"] for _ in range(12)]
        await wait_for_statuses(db, {"delivered": 12}, hook["uuid"], timeout_s=10)
    requests = receiver.on("/both")
    assert [r.webhook_id for r in requests] == events
    assert receiver.peak_in_flight == 1
    # Ordered, each waits for the one before; past the burst, no faster than 10 a second.
    times = [r.at_monotonic for r in requests]
    assert (times[-1] - times[2]) >= 9 / 10 * 0.8, times
