"""Big batches are written with COPY: the same rows and answers as the one-statement path, and a
fall-back to that statement for replays and for a uuid committed meanwhile by another ingest."""

from __future__ import annotations

import asyncio
import copy
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from service.catalog import CATALOG
from service.common.channels import DELIVERIES_CHANNEL
from service.core.analytics import Anonymizer
from service.core.custom_schemas import SchemaCache
from service.core.events import (
    COPY_MIN_EVENTS,
    EventRow,
    RecordContext,
    register_events,
)
from service.db import asyncpg_dsn
from service.models.events import ENTITY_COLUMNS
from service.schemas.events import ValidatedEvent, validate_event
from tests.support.api import create_webhook
from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event

ALL_TYPES = list(CATALOG)
TELEMETRY = {"telemetry_url": "http://127.0.0.1:9/posthog"}


def test_event_rows_name_the_entity_columns_in_table_order() -> None:
    assert EventRow._fields[4:10] == ENTITY_COLUMNS


def _events(count: int) -> list[dict[str, Any]]:
    return [sample_event(ALL_TYPES[i % len(ALL_TYPES)]) for i in range(count)]


def _with_new_uuids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(copy.deepcopy(e), uuid=str(uuid4())) for e in events]


async def _rows(db: asyncpg.Connection, uuids: list[str]) -> list[dict[str, Any]]:
    """Per event (in the given order): its payload without its uuid, and its deliveries."""
    found = []
    for uuid in uuids:
        payload = orjson.loads(
            await db.fetchval("SELECT CAST(payload AS text) FROM events WHERE uuid = $1", uuid)
        )
        deliveries = await db.fetch(
            "SELECT subscriber_uuid, subscriber_kind, event_type, CAST(payload AS text) AS payload "
            "FROM deliveries WHERE event_uuid = $1 ORDER BY subscriber_uuid",
            uuid,
        )
        # A webhook delivery carries the event's payload; the analytics one, its telemetry record.
        described = [
            (
                d["subscriber_uuid"],
                d["subscriber_kind"],
                d["event_type"],
                orjson.loads(d["payload"]) == payload,
            )
            for d in deliveries
        ]
        found.append({"payload": {k: v for k, v in payload.items() if k != "uuid"}, "deliveries": described})
    return found


async def test_a_big_batch_writes_what_small_ones_write(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(**TELEMETRY) as running:
        await create_webhook(running.client, subscriptions=[{"event_type": "project:*"}])
        await create_webhook(
            running.client, subscriptions=[{"event_type": "*:failed"}, {"event_type": "*:created"}]
        )
        await create_webhook(running.client, subscriptions=[{"event_type": "jupyter:image-build:started"}])
        big = _events(2 * COPY_MIN_EVENTS)
        small = _with_new_uuids(big)
        copied = await running.client.post("/api/v1/events/batch", json={"events": big})
        assert copied.status_code == 202, copied.text
        stated = []
        for start in range(0, len(small), 10):  # below COPY_MIN_EVENTS: the one statement
            response = await running.client.post(
                "/api/v1/events/batch", json={"events": small[start : start + 10]}
            )
            assert response.status_code == 202, response.text
            stated += response.json()["items"]
        items = copied.json()["items"]
        assert [item["uuid"] for item in items] == [e["uuid"] for e in big]
        assert [item["deliveries"] for item in items] == [item["deliveries"] for item in stated]
        assert all(item["deliveries"] >= 1 for item in items)  # the analytics delivery at least
        assert await _rows(db, [e["uuid"] for e in big]) == await _rows(db, [e["uuid"] for e in small])
        # Recorded in the order given: the feed's sequence follows the batch.
        seqs = await db.fetch(
            "SELECT uuid::text FROM events WHERE uuid = ANY($1::uuid[]) ORDER BY seq",
            [e["uuid"] for e in big],
        )
        assert [row["uuid"] for row in seqs] == [e["uuid"] for e in big]


async def test_a_big_batch_notifies_the_dispatcher_once(herald: RunningApp, database_url: str) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    listener = await asyncpg.connect(asyncpg_dsn(database_url))
    notified: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(DELIVERIES_CHANNEL, lambda *args: notified.put_nowait(args[2]))
    try:
        response = await herald.client.post("/api/v1/events/batch", json={"events": _events(COPY_MIN_EVENTS)})
        assert response.status_code == 202, response.text
        await asyncio.wait_for(notified.get(), timeout=5)
        await asyncio.sleep(0.2)
        assert notified.empty()
    finally:
        await listener.close()


async def test_a_big_batch_with_a_replay_answers_it_in_place(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    events = _events(COPY_MIN_EVENTS + 5)
    first = await herald.client.post("/api/v1/events", json=events[7])
    assert first.status_code == 202
    response = await herald.client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert items[7] == first.json() | {"replayed": True}
    assert sum("replayed" in item for item in items) == 1
    assert await db.fetchval("SELECT count(*) FROM events") == len(events)


def _validated(events: list[dict[str, Any]]) -> list[ValidatedEvent]:
    return [validate_event(orjson.dumps(e)) for e in events]


async def test_a_uuid_committed_meanwhile_by_another_ingest_falls_back_to_the_statement(
    herald: RunningApp, database_url: str, db: asyncpg.Connection
) -> None:
    ctx = RecordContext(Anonymizer(b"test-key"), UUID(int=1), telemetry_enabled=False, schemas=SchemaCache())
    events = _events(COPY_MIN_EVENTS)
    first = await asyncpg.connect(asyncpg_dsn(database_url))
    second = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        first_tx = first.transaction()
        await first_tx.start()
        [single] = await register_events(first, ctx, _validated([events[3]]))  # not committed yet
        async with second.transaction():
            # The COPY waits on the uncommitted row, then meets its unique violation once it commits.
            batch = asyncio.create_task(register_events(second, ctx, _validated(events)))
            await asyncio.sleep(0.5)
            assert not batch.done()
            await first_tx.commit()
            recorded = await asyncio.wait_for(batch, timeout=10)
        assert [r.replayed for r in recorded] == [i == 3 for i in range(len(events))]
        assert recorded[3].timestamp == single.timestamp
    finally:
        await first.close()
        await second.close()
    assert await db.fetchval("SELECT count(*) FROM events") == len(events)
