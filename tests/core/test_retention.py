"""Retention: expired finished deliveries (with attempts) and unreferenced expired events go, in batches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.core.retention import RETENTION_LOCK_KEY, RetentionJob, purge_expired
from service.db import asyncpg_dsn, create_engine
from service.metrics import Metrics
from tests.support.app import AppFactory, RunningApp
from tests.support.db import eventually
from tests.support.event_samples import sample_event

# Ages: how long before now() a row was received, created or last changed.
OLD = timedelta(days=40)
YOUNG = timedelta(days=2)
NOW = timedelta(0)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2, max_overflow=0)
    yield engine
    await engine.dispose()


async def add_event(db: asyncpg.Connection, age: timedelta = NOW) -> uuid.UUID:
    """An event row received ``age`` ago."""
    event_uuid = uuid.uuid4()
    await db.execute(
        "INSERT INTO events (uuid, type, kind, timestamp, received_at, project_uuid, sections, payload) "
        "VALUES ($1, 'project:created', 'project', now(), now() - $2::interval, $3, '{}', '{}')",
        event_uuid,
        age,
        uuid.uuid4(),
    )
    return event_uuid


async def add_delivery(
    db: asyncpg.Connection,
    event_uuid: uuid.UUID,
    status: str,
    *,
    created: timedelta,
    updated: timedelta,
    attempts: int = 2,
) -> uuid.UUID:
    """A delivery with ``attempts`` attempt rows, created and last changed ``created``/``updated`` ago."""
    delivery_uuid = uuid.uuid4()
    await db.execute(
        "INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload, "
        "status, attempts_count, created_at, updated_at) VALUES ($1, $2, 'project:created', $3, 'webhook', "
        "'{}', $4, $5, now() - $6::interval, now() - $7::interval)",
        delivery_uuid,
        event_uuid,
        uuid.uuid4(),
        status,
        attempts,
        created,
        updated,
    )
    for number in range(1, attempts + 1):
        await db.execute(
            "INSERT INTO delivery_attempts (delivery_uuid, number, started_at, duration_ms, status_code) "
            "VALUES ($1, $2, now() - $3::interval, 12.5, 500)",
            delivery_uuid,
            number,
            created,
        )
    return delivery_uuid


async def existing(db: asyncpg.Connection, table: str, uuids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await db.fetch(f"SELECT uuid FROM {table} WHERE uuid = ANY($1::uuid[])", uuids)  # noqa: S608
    return {row["uuid"] for row in rows}


async def test_expired_finished_deliveries_and_unreferenced_events_are_removed(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    old_event = await add_event(db, OLD)
    gone = [
        await add_delivery(db, old_event, status, created=OLD, updated=OLD)
        for status in ("delivered", "cancelled", "failed")
    ]
    kept_event = await add_event(db, OLD)
    kept = [
        await add_delivery(db, kept_event, "pending", created=OLD, updated=OLD),
        await add_delivery(db, kept_event, "delivering", created=OLD, updated=OLD),
        # Failed within the window: kept until recovered or expired.
        await add_delivery(db, kept_event, "failed", created=YOUNG, updated=YOUNG),
        # Created long ago but recovered and delivered recently: its last change counts.
        await add_delivery(db, kept_event, "delivered", created=OLD, updated=YOUNG),
    ]
    lonely_old_event = await add_event(db, OLD)
    young_event = await add_event(db, YOUNG)
    fresh_event = await add_event(db, NOW)

    metrics = Metrics()
    result = await purge_expired(engine, 30, metrics=metrics)

    assert not result.skipped
    assert result.deliveries == 3
    assert result.events == 2
    assert await existing(db, "deliveries", gone + kept) == set(kept)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_uuid = ANY($1::uuid[])", gone
        )
        == 0
    )
    assert await db.fetchval("SELECT count(*) FROM delivery_attempts") == 2 * len(kept)
    events = [old_event, kept_event, lonely_old_event, young_event, fresh_event]
    assert await existing(db, "events", events) == {kept_event, young_event, fresh_event}
    scrape = metrics.render().decode()
    assert 'herald_retention_deleted_rows_total{table="deliveries"} 3.0' in scrape
    assert 'herald_retention_deleted_rows_total{table="events"} 2.0' in scrape

    # A second run finds nothing more to do.
    again = await purge_expired(engine, 30)
    assert (again.deliveries, again.events) == (0, 0)


async def test_work_is_done_in_bounded_batches(engine: AsyncEngine, db: asyncpg.Connection) -> None:
    events = [await add_event(db, OLD) for _ in range(7)]
    for event_uuid in events[:5]:
        await add_delivery(db, event_uuid, "delivered", created=OLD, updated=OLD, attempts=1)
    kept = await add_event(db)

    result = await purge_expired(engine, 30, batch_rows=2, pause_s=0)

    assert (result.deliveries, result.events) == (5, 7)
    # 5 deliveries by 2 = 3 batches; 8 events walked by 2 = 4 batches (the last one reaches the window).
    assert result.batches == 7
    assert await existing(db, "events", [*events, kept]) == {kept}


async def test_the_window_is_the_setting(engine: AsyncEngine, db: asyncpg.Connection) -> None:
    event_uuid = await add_event(db, YOUNG)
    delivery = await add_delivery(db, event_uuid, "delivered", created=YOUNG, updated=YOUNG)
    assert (await purge_expired(engine, 3)).deliveries == 0
    result = await purge_expired(engine, 1)
    assert (result.deliveries, result.events) == (1, 1)
    assert await existing(db, "deliveries", [delivery]) == set()


async def test_only_one_replica_purges_at_a_time(
    engine: AsyncEngine, db: asyncpg.Connection, database_url: str
) -> None:
    event_uuid = await add_event(db, OLD)
    await add_delivery(db, event_uuid, "delivered", created=OLD, updated=OLD)
    other_replica = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await other_replica.execute("BEGIN")
        await other_replica.execute("SELECT pg_advisory_xact_lock($1)", RETENTION_LOCK_KEY)
        result = await purge_expired(engine, 30)
        assert result.skipped
        assert (result.deliveries, result.events) == (0, 0)
        await other_replica.execute("COMMIT")
    finally:
        await other_replica.close()
    assert (await purge_expired(engine, 30)).deliveries == 1


async def test_a_stop_request_ends_the_run_between_batches(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    event_uuid = await add_event(db, OLD)
    for _ in range(4):
        await add_delivery(db, event_uuid, "cancelled", created=OLD, updated=OLD, attempts=0)
    stop = asyncio.Event()
    stop.set()
    result = await purge_expired(engine, 30, batch_rows=1, stop=stop)
    assert result.batches == 0
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 4


async def test_the_job_runs_periodically_and_stops_cleanly(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    job = RetentionJob(engine, 30, interval_s=0.05, first_run_delay_s=0)
    job.start()
    try:
        await add_event(db, OLD)
        for _ in range(100):
            if job.runs >= 2 and await db.fetchval("SELECT count(*) FROM events") == 0:
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval("SELECT count(*) FROM events") == 0
        assert job.is_alive()
    finally:
        await asyncio.wait_for(job.stop(), 5)
    assert not job.is_alive()


async def test_the_job_survives_a_database_error(
    db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    broken = create_engine("postgresql://herald@127.0.0.1:1/none")
    job = RetentionJob(broken, 30, interval_s=0.05, first_run_delay_s=0)
    job.start()

    async def failed_twice() -> bool:
        return sum("retention run failed" in record.getMessage() for record in caplog.records) >= 2

    try:
        await eventually(failed_twice, timeout_s=10)  # a run failed, and the job ran again
        assert job.is_alive()
        assert job.runs == 0
    finally:
        await job.stop()
        await broken.dispose()


async def test_the_app_runs_the_job_for_its_lifetime(app_factory: AppFactory) -> None:
    def retention_tasks() -> list[asyncio.Task[object]]:
        return [task for task in asyncio.all_tasks() if task.get_name() == "herald-retention"]

    before = len(retention_tasks())
    async with app_factory():
        assert len(retention_tasks()) == before + 1
    await asyncio.sleep(0)
    assert len(retention_tasks()) == before


async def test_ingested_events_survive_retention(herald: RunningApp, db: asyncpg.Connection) -> None:
    body = sample_event("project:created")
    assert (await herald.client.post("/api/v1/events", json=body)).status_code == 202
    result = await purge_expired(herald.state.engine, 30)
    assert result.events == 0
    assert (await herald.client.get(f"/api/v1/events/{body['uuid']}")).status_code == 200
    await db.execute("UPDATE events SET received_at = now() - interval '31 days'")
    assert (await purge_expired(herald.state.engine, 30)).events == 1
    assert (await herald.client.get(f"/api/v1/events/{body['uuid']}")).status_code == 404
