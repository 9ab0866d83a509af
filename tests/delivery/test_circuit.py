"""The circuit breaker per webhook, end to end with two dispatchers on one database, and the fair
share of the slots beside webhooks that hang."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from service.delivery.dispatcher import Dispatcher
from tests.support.api import create_webhook, ingest_many
from tests.support.app import AppFactory
from tests.support.db import FAST, eventually, statuses, wait_for_statuses
from tests.support.receiver import Receiver, Reply, running_receiver

WATCH_CIRCUITS = [{"event_type": "herald:subscriber:circuit-*"}]
CATALOG_ONLY = [{"event_type": "project:*"}]
# Three failures open a circuit; probes after 0.3 s, then 0.6 s, at most 1 s. Retries come fast
# and are many, so that only the circuit holds attempts back.
CIRCUIT = FAST | {
    "circuit_failures": 3,
    "circuit_probe_seconds": 0.3,
    "circuit_probe_max_seconds": 1.0,
    "retry_schedule": ",".join(["50ms"] * 20),
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def circuit_of(client: httpx.AsyncClient, uuid: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/subscribers/{uuid}")
    assert response.status_code == 200, response.text
    circuit: dict[str, Any] = response.json()["circuit"]
    return circuit


async def attempts_made(db: asyncpg.Connection, subscriber: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.uuid = a.delivery_uuid "
        "WHERE d.subscriber_uuid = $1::uuid",
        subscriber,
    )
    return count


async def test_a_circuit_opens_probes_alone_and_closes_across_two_dispatchers(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/flaky", then=Reply(503, delay_s=0.05))
    async with app_factory(**CIRCUIT) as first, app_factory(**CIRCUIT) as second:
        await create_webhook(first.client, receiver.url("/watch"), subscriptions=WATCH_CIRCUITS)
        hook = await create_webhook(first.client, receiver.url("/flaky"), subscriptions=CATALOG_ONLY)
        await ingest_many(second.client, 6)

        async def opened() -> bool:
            return bool((await circuit_of(first.client, hook["uuid"]))["state"] == "open")

        await eventually(opened, timeout_s=5)
        circuit = await circuit_of(second.client, hook["uuid"])
        assert circuit["consecutive_failures"] >= 3
        assert circuit["since"] is not None
        assert circuit["next_probe_at"] is not None
        # Two probes fail, one at a time, the second after twice the wait; nothing else goes.
        at_open = len(receiver.on("/flaky"))
        await receiver.wait_for(at_open + 2, "/flaky", timeout_s=5)
        probes = receiver.on("/flaky")[at_open:]
        assert probes[1].at_monotonic - probes[0].at_monotonic >= 0.55
        assert receiver.peak_in_flight <= 3  # the opening failures at most, never a probe beside them
        receiver.reply("/flaky", then=Reply(200))
        await wait_for_statuses(db, {"delivered": 6}, hook["uuid"], timeout_s=10)
        closed = await circuit_of(first.client, hook["uuid"])
        assert closed["state"] == "closed"
        assert closed["consecutive_failures"] == 0
        await receiver.wait_for(2, "/watch", timeout_s=5)
    # Every attempt was a request; the opening failures, the probes and the six deliveries.
    assert await attempts_made(db, hook["uuid"]) == len(receiver.on("/flaky"))
    reports = [json.loads(r.body)["event"] for r in receiver.on("/watch")]
    assert [r["type"] for r in reports] == [
        "herald:subscriber:circuit-opened",
        "herald:subscriber:circuit-closed",
    ]
    assert reports[0]["subscriber"]["uuid"] == hook["uuid"]
    assert reports[0]["circuit"]["state"] == "open"
    assert reports[0]["circuit"]["consecutive_failures"] == 3
    assert reports[1]["circuit"]["state"] == "closed"


def _refusing_port() -> int:
    # A port that was just free: nothing listens there, so connections are refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_open_circuit_burns_no_attempts_and_enabling_the_webhook_closes_it(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    settings = CIRCUIT | {"circuit_probe_seconds": 30.0, "circuit_probe_max_seconds": 60.0}
    async with app_factory(**settings) as herald:
        url = f"http://127.0.0.1:{_refusing_port()}/refused"
        hook = await create_webhook(herald.client, url, subscriptions=CATALOG_ONLY)
        await ingest_many(herald.client, 10)

        async def opened() -> bool:
            return bool((await circuit_of(herald.client, hook["uuid"]))["state"] == "open")

        await eventually(opened, timeout_s=5)
        # While it is open, the deliveries wait parked (the attempts in flight when it opened
        # written), their attempts and schedule standing still.
        await eventually(lambda: _all_parked(db, hook["uuid"]), timeout_s=5)
        made = await attempts_made(db, hook["uuid"])
        counts = await db.fetch(
            "SELECT uuid, attempts_count, next_attempt_at FROM deliveries "
            "WHERE subscriber_uuid = $1::uuid ORDER BY uuid",
            hook["uuid"],
        )
        dispatcher = herald.state.dispatcher
        assert isinstance(dispatcher, Dispatcher)
        # Several claims later (each woken at once), nothing was attempted or rescheduled.
        claims = dispatcher.counters["claims"] + 5

        async def claimed_more() -> bool:
            dispatcher.wake()
            return dispatcher.counters["claims"] >= claims

        await eventually(claimed_more, timeout_s=5)
        assert await attempts_made(db, hook["uuid"]) == made
        assert (
            await db.fetch(
                "SELECT uuid, attempts_count, next_attempt_at FROM deliveries "
                "WHERE subscriber_uuid = $1::uuid ORDER BY uuid",
                hook["uuid"],
            )
            == counts
        )
        assert await statuses(db, hook["uuid"]) == {"pending": 10}
        # Disabled and enabled again: closed, its deliveries (recovered) go at once.
        for enabled in (False, True):
            path = f"/api/v1/subscribers/{hook['uuid']}"
            response = await herald.client.patch(path, json={"enabled": enabled})
            assert response.status_code == 200, response.text
        assert response.json()["circuit"]["state"] == "closed"
        assert response.json()["circuit"]["consecutive_failures"] == 0


async def _all_parked(db: asyncpg.Connection, subscriber: str) -> bool:
    waiting: int = await db.fetchval(
        "SELECT count(*) FROM deliveries "
        "WHERE subscriber_uuid = $1::uuid AND NOT (status = 'pending' AND throttled)",
        subscriber,
    )
    return waiting == 0


HANGING = FAST | {"delivery_timeout_seconds": 30, "lease_seconds": 60, "shutdown_grace_seconds": 0.1}


async def test_a_healthy_webhook_is_served_beside_fifty_hanging_ones(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    for path in [f"/hang{i}" for i in range(50)]:
        receiver.reply(path, then=Reply(hang=True))
    async with app_factory(**HANGING) as herald:
        for i in range(50):
            await create_webhook(herald.client, receiver.url(f"/hang{i}"), name=f"hanging {i}")
        await ingest_many(herald.client, 4)  # every hanging webhook has work due
        await receiver.wait_for(50, timeout_s=5)  # each holds a slot
        healthy = await create_webhook(herald.client, receiver.url("/ok"), name="healthy")
        await ingest_many(herald.client, 40)
        await wait_for_statuses(db, {"delivered": 40}, healthy["uuid"], timeout_s=10)
        # A hanging webhook never heard from holds its first window: one request.
        assert max(len(receiver.on(f"/hang{i}")) for i in range(50)) == 1


async def test_a_healthy_webhook_is_served_beside_a_hanging_one_with_eight_slots(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(**HANGING | {"delivery_concurrency": 8}) as herald:
        hanging = await create_webhook(herald.client, receiver.url("/hang-alone"), name="hanging")
        receiver.reply("/hang-alone", then=Reply(hang=True))
        await ingest_many(herald.client, 20)
        await receiver.wait_for(1, "/hang-alone", timeout_s=5)
        other = await create_webhook(herald.client, receiver.url("/ok-small"), name="healthy")
        await ingest_many(herald.client, 20)
        await wait_for_statuses(db, {"delivered": 20}, other["uuid"], timeout_s=10)
        assert len(receiver.on("/hang-alone")) <= 4  # at most its fair share of eight slots
        del hanging


async def test_deliveries_claimed_ahead_go_back_unsent_when_the_receiver_asks_to_wait(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    # Fast answers widen the window (and what is claimed ahead), then a 429 with Retry-After.
    receiver.reply("/busy", *[Reply(200)] * 60, Reply(429, headers={"Retry-After": "2"}), then=Reply(200))
    async with app_factory(**FAST) as herald:
        hook = await create_webhook(herald.client, receiver.url("/busy"))
        await ingest_many(herald.client, 200)
        await wait_for_statuses(db, {"delivered": 200}, hook["uuid"], timeout_s=15)
    # Whatever was claimed ahead when the 429 came (how much depends on timing) went back unsent:
    requests = receiver.on("/busy")
    paused_at = requests[60].at_monotonic
    # Those in flight when it answered arrive with it; nothing else until the pause ends.
    during = [r for r in requests[61:] if paused_at + 0.1 < r.at_monotonic < paused_at + 1.9]
    assert during == []
    assert await attempts_made(db, hook["uuid"]) == len(requests)
