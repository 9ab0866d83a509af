"""Batch deliverers (the analytics interface): many deliveries per request, same retry rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from service.delivery.analytics import ANALYTICS_KIND, BatchDeliverer
from service.delivery.claims import ClaimedDelivery
from service.delivery.dispatcher import Dispatcher
from service.delivery.webhook import AttemptRecord
from tests.support.api import ingest_many
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, eventually


class FakeDeliverer:
    """Records each batch; answers with the scripted status codes, then 200."""

    def __init__(self, max_batch: int, statuses: Sequence[int] = ()) -> None:
        self.max_batch = max_batch
        self.flush_interval_s = 0.0
        self.batches: list[list[ClaimedDelivery]] = []
        self._statuses = list(statuses)

    async def deliver(self, deliveries: Sequence[ClaimedDelivery], *, attempt_number: int) -> AttemptRecord:
        self.batches.append(list(deliveries))
        status = self._statuses.pop(0) if self._statuses else 200
        return AttemptRecord(attempt_number, datetime.now(UTC), 1.0, status, None, None)


def _dispatcher(herald: RunningApp, deliverer: BatchDeliverer) -> Dispatcher:
    state = herald.state
    return Dispatcher(
        settings=state.settings,
        engine=state.engine,
        sessions=state.sessions,
        database_url=state.database_url,
        clients=herald.state.http,
        batch_deliverers={ANALYTICS_KIND: deliverer},
    )


async def _analytics(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE subscriber_kind = 'analytics' GROUP BY status"
    )
    return {row["status"]: row["n"] for row in rows}


async def test_analytics_deliveries_go_out_in_batches(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    overrides = FAST | {"dispatcher_enabled": False, "telemetry_url": "http://127.0.0.1:9"}
    async with app_factory(**overrides) as herald:
        await ingest_many(herald.client, 250)
        deliverer = FakeDeliverer(max_batch=100)
        dispatcher = _dispatcher(herald, deliverer)
        dispatcher.start()
        try:
            await eventually(lambda: _done(db, {"delivered": 250}))
        finally:
            await dispatcher.stop()
    assert sorted(len(batch) for batch in deliverer.batches) == [50, 100, 100]
    payload = json.loads(deliverer.batches[0][0].payload)
    assert set(payload) == {"event_properties", "derived_properties"}


async def test_failed_batch_is_retried_on_the_schedule(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    overrides = FAST | {"dispatcher_enabled": False, "telemetry_url": "http://127.0.0.1:9"}
    async with app_factory(**overrides) as herald:
        await ingest_many(herald.client, 1)
        deliverer = FakeDeliverer(max_batch=100, statuses=[503, 500])
        dispatcher = _dispatcher(herald, deliverer)
        dispatcher.start()
        try:
            await eventually(lambda: _done(db, {"delivered": 1}))
        finally:
            await dispatcher.stop()
    assert [len(batch) for batch in deliverer.batches] == [1, 1, 1]
    numbers = await db.fetch(
        "SELECT a.number, a.status_code FROM delivery_attempts a "
        "JOIN deliveries d ON d.uuid = a.delivery_uuid "
        "WHERE d.subscriber_kind = 'analytics' ORDER BY a.number"
    )
    assert [(row["number"], row["status_code"]) for row in numbers] == [(1, 503), (2, 500), (3, 200)]


async def test_without_a_batch_deliverer_analytics_deliveries_are_left_alone(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST | {"telemetry_url": "http://127.0.0.1:9"}) as herald:
        await ingest_many(herald.client, 5)
        await asyncio.sleep(0.3)  # several polls
    assert await _analytics(db) == {"pending": 5}


async def _done(db: asyncpg.Connection, expected: dict[str, int]) -> bool:
    return await _analytics(db) == expected
