"""Telemetry end to end: ingest → analytics deliveries → batched PostHog requests to a fake backend."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import asyncpg

from service.catalog import CATALOG
from tests.support.api import ingest_many
from tests.support.app import AppFactory
from tests.support.db import eventually
from tests.support.event_samples import DEFAULT_CANARY, sample_event, uuids_in
from tests.support.posthog_receiver import TELEMETRY, running_posthog
from tests.support.process import free_port

ITEM_KEYS = {"event", "distinct_id", "uuid", "timestamp", "properties"}
PROPERTY_KEYS = {"event_properties", "derived_properties", "app_properties", "system_properties"}


async def _analytics_statuses(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE subscriber_kind = 'analytics' GROUP BY status"
    )
    return {row["status"]: row["n"] for row in rows}


async def _all_delivered(db: asyncpg.Connection, count: int) -> None:
    async def done() -> bool:
        return await _analytics_statuses(db) == {"delivered": count}

    await eventually(done, timeout_s=15)


async def test_events_go_out_in_batches_with_the_posthog_body(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with (
        running_posthog() as posthog,
        app_factory(**TELEMETRY, telemetry_url=posthog.url, telemetry_batch_size=10) as herald,
    ):
        uuids = await ingest_many(herald.client, 35)
        await posthog.wait_for_events(35)
        await _all_delivered(db, 35)
        installation = herald.state.installation
    assert 4 <= len(posthog.received) < 35
    assert set(posthog.paths) == {"/batch/"}
    for request in posthog.requests:
        assert set(request) == {"api_key", "batch"}
        assert request["api_key"] == "phc_test"
        assert 1 <= len(request["batch"]) <= 10
    expected = {str(installation.anonymizer.as_uuid(u)) for u in uuids}
    assert set(posthog.uuid_counts()) == expected
    for item in posthog.events:
        assert set(item) == ITEM_KEYS
        assert item["event"] == "project:created"
        assert item["distinct_id"] == str(installation.installation_id)
        assert datetime.fromisoformat(item["timestamp"]).tzinfo is not None
        props = item["properties"]
        assert set(props) == PROPERTY_KEYS
        assert props["app_properties"]["dispatcher_enabled"] is True
        assert props["app_properties"]["api_keys_configured"] is False
        assert props["app_properties"]["telemetry_batch_size"] == 10
        assert set(props["system_properties"]) == {"os", "python_version", "machine", "cpu_count"}
        assert props["event_properties"]["type"] == "project:created"


async def test_one_batch_carries_many_events(app_factory: AppFactory, db: asyncpg.Connection) -> None:
    async with (
        running_posthog() as posthog,
        app_factory(
            **TELEMETRY | {"telemetry_flush_interval_seconds": 0.3}, telemetry_url=posthog.url
        ) as herald,
    ):
        await ingest_many(herald.client, 50)
        await posthog.wait_for_events(50)
    # One ingest transaction, a flush interval to fill the batch: far fewer requests than events.
    assert len(posthog.received) <= 3


async def test_distinct_id_is_the_installation_id_and_stable_across_restarts(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with running_posthog() as posthog:
        for expected in (1, 2):
            async with app_factory(**TELEMETRY, telemetry_url=posthog.url) as herald:
                await ingest_many(herald.client, 1)
                await posthog.wait_for_events(expected)
    stored = await db.fetchval("SELECT installation_id FROM installation")
    assert [item["distinct_id"] for item in posthog.events] == [str(stored)] * 2


async def test_no_canary_and_no_raw_uuid_of_any_of_the_58_types_reaches_the_backend(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    samples = [sample_event(type_name, canary=DEFAULT_CANARY) for type_name in CATALOG]
    assert len(samples) == 58
    async with (
        running_posthog() as posthog,
        app_factory(**TELEMETRY, telemetry_url=posthog.url, telemetry_batch_size=20) as herald,
    ):
        response = await herald.client.post("/api/v1/events/batch", json={"events": samples})
        assert response.status_code == 202, response.text
        await posthog.wait_for_events(58)
        await _all_delivered(db, 58)
    received = b"".join(posthog.received)
    assert {item["event"] for item in posthog.events} == set(CATALOG)
    assert DEFAULT_CANARY.lower().encode() not in received.lower()
    for sample in samples:
        for raw_uuid in uuids_in(sample):
            assert raw_uuid.encode() not in received.lower(), (sample["type"], raw_uuid)
    # Hashed identifiers did go out (the anonymized payload is not just empty).
    anonymize = herald.state.installation.anonymizer
    project_hash = anonymize(samples[0]["project"]["uuid"]).encode()
    assert project_hash in received


async def test_backend_down_then_up_every_event_arrives_once(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    port = free_port()
    overrides = TELEMETRY | {"retry_schedule": "200ms,300ms,500ms,1s,1s,2s,2s,2s"}
    async with app_factory(**overrides, telemetry_url=f"http://127.0.0.1:{port}") as herald:
        uuids = await ingest_many(herald.client, 40)

        async def failed_attempts() -> bool:
            count = await db.fetchval(
                "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.uuid = a.delivery_uuid "
                "WHERE d.subscriber_kind = 'analytics' AND a.error IS NOT NULL"
            )
            return bool(count >= 40)

        await eventually(failed_attempts)
        error = await db.fetchval(
            "SELECT last_error FROM deliveries WHERE subscriber_kind = 'analytics' LIMIT 1"
        )
        assert error is not None
        assert "refused" in error
        async with running_posthog(port) as posthog:
            await posthog.wait_for_events(40, timeout_s=20)
            await _all_delivered(db, 40)
            await asyncio.sleep(0.3)  # nothing more comes
        anonymizer = herald.state.installation.anonymizer
    counts = posthog.uuid_counts()
    assert set(counts) == {str(anonymizer.as_uuid(u)) for u in uuids}
    assert [uuid for uuid, n in counts.items() if n > 1] == []


async def test_a_retried_batch_is_identical_so_the_backend_can_deduplicate(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with running_posthog() as posthog:
        posthog.statuses = [500]
        async with app_factory(**TELEMETRY, telemetry_url=posthog.url) as herald:
            await ingest_many(herald.client, 5)
            await posthog.wait_for_events(5)
            await _all_delivered(db, 5)
    first = json.loads(posthog.received[0])
    retried = {item["uuid"]: item for body in posthog.received[1:] for item in json.loads(body)["batch"]}
    assert len(first["batch"]) == 5
    for item in first["batch"]:
        assert retried[item["uuid"]] == item
    attempts = await db.fetch(
        "SELECT a.number, a.status_code FROM delivery_attempts a "
        "JOIN deliveries d ON d.uuid = a.delivery_uuid "
        "WHERE d.subscriber_kind = 'analytics' ORDER BY a.number"
    )
    assert [(r["number"], r["status_code"]) for r in attempts] == [(1, 500)] * 5 + [(2, 200)] * 5


async def test_undeliverable_telemetry_ends_failed_after_the_schedule(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with running_posthog() as posthog:
        posthog.statuses = [400] * 10
        async with app_factory(**TELEMETRY, telemetry_url=posthog.url) as herald:
            await ingest_many(herald.client, 2)

            async def failed() -> bool:
                return await _analytics_statuses(db) == {"failed": 2}

            await eventually(failed)
    # 1 + 3 waits; jitter may split a retry into two requests.
    assert 4 <= len(posthog.received) <= 8
    assert posthog.bodies == []
    rows = await db.fetch(
        "SELECT attempts_count, last_error FROM deliveries WHERE subscriber_kind = 'analytics'"
    )
    assert [r["attempts_count"] for r in rows] == [4, 4]
    assert all("400" in r["last_error"] for r in rows)
