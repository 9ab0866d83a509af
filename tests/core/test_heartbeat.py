"""The telemetry heartbeat: one ``heartbeat-trigger`` per interval per installation, ``active`` right."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import asyncpg

from service.core.heartbeat import Heartbeat
from tests.support.app import AppFactory, RunningApp
from tests.support.db import eventually
from tests.support.posthog_receiver import TELEMETRY, running_posthog

OFF_DISPATCHER: dict[str, Any] = {"telemetry_url": "http://127.0.0.1:9", "dispatcher_enabled": False}


async def _heartbeats(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT created_at, CAST(payload AS text) AS payload FROM deliveries "
        "WHERE event_type = 'heartbeat-trigger' ORDER BY created_at"
    )


def _active(row: asyncpg.Record) -> bool:
    payload = json.loads(row["payload"])
    assert payload["derived_properties"] == {}
    active: bool = payload["event_properties"]["active"]
    return active


def _heartbeat(herald: RunningApp, interval_s: float, last_activity: float | None) -> Heartbeat:
    installation = herald.state.installation
    heartbeat = Heartbeat(
        herald.state.sessions,
        interval_s=interval_s,
        installation_id=installation.installation_id,
        analytics_subscriber_uuid=installation.analytics_subscriber_uuid,
        last_activity=lambda: last_activity,
    )
    heartbeat.grace_s = 0.05
    return heartbeat


async def test_two_replicas_send_one_heartbeat_per_interval(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    interval_s = 0.3
    settings = OFF_DISPATCHER | {"heartbeat_interval_seconds": interval_s}
    started = time.monotonic()
    async with app_factory(**settings), app_factory(**settings):
        both_up = time.monotonic()
        await asyncio.sleep(2.1)
        both_stopping = time.monotonic()
    lifetime = time.monotonic() - started
    rows = await _heartbeats(db)
    # One replica alone would send ~7; two uncoordinated ones ~14 (in pairs, milliseconds apart).
    assert (both_stopping - both_up) / interval_s - 3 <= len(rows) <= lifetime / interval_s + 1, rows
    gaps = [(b["created_at"] - a["created_at"]).total_seconds() for a, b in itertools.pairwise(rows)]
    assert min(gaps) > interval_s / 6, gaps
    assert not any(_active(row) for row in rows)


async def test_a_slot_is_sent_once_and_reports_activity_seen_by_any_replica(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(**OFF_DISPATCHER) as herald:
        interval_s = 60.0
        slot = time.time()
        idle = _heartbeat(herald, interval_s, last_activity=None)
        busy = _heartbeat(herald, interval_s, last_activity=time.monotonic() - 5)
        results = await asyncio.gather(idle.beat(slot), busy.beat(slot))
        assert sorted(results) == [False, True]
        # The same slot again: already sent.
        assert await idle.beat(slot) is False
        assert await busy.beat(slot) is False
        # The next slot: the activity is now more than half an interval old.
        assert await idle.beat(slot + interval_s) is True
        stale = _heartbeat(herald, interval_s, last_activity=time.monotonic() - 40)
        assert await stale.beat(slot + 2 * interval_s) is True
    assert [_active(row) for row in await _heartbeats(db)] == [True, False, False]


async def test_a_slot_later_than_every_replica_so_far_is_always_taken(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(**OFF_DISPATCHER) as herald:
        beat = _heartbeat(herald, 900.0, last_activity=None)
        now = time.time()
        assert await beat.beat(now) is True
        # A restart with a shorter interval: the next, closer slot is still taken.
        short = _heartbeat(herald, 60.0, last_activity=None)
        assert short.next_slot_start(now) > now
        assert await short.beat(short.next_slot_start(now)) is True
        assert await short.beat(now - 1) is False


async def test_heartbeat_reaches_the_backend_active_after_api_use_not_after_probes(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    interval_s = 0.6
    async with (
        running_posthog() as posthog,
        app_factory(**TELEMETRY, telemetry_url=posthog.url, heartbeat_interval_seconds=interval_s) as herald,
    ):
        assert (await herald.client.get("/health/live")).status_code == 200

        def heartbeats() -> list[dict[str, Any]]:
            return [e for e in posthog.events if e["event"] == "heartbeat-trigger"]

        async def arrived(count: int) -> bool:
            return len(heartbeats()) >= count

        await eventually(lambda: arrived(1), timeout_s=5)
        assert heartbeats()[0]["properties"]["event_properties"] == {"active": False}
        seen = len(heartbeats())
        # Keep the API busy until the next heartbeat.
        while len(heartbeats()) == seen:
            assert (await herald.client.get("/api/v1/event-types")).status_code == 200
            await asyncio.sleep(0.05)
        assert heartbeats()[-1]["properties"]["event_properties"] == {"active": True}
        item = heartbeats()[-1]
        assert item["distinct_id"] == str(herald.state.installation.installation_id)
        assert set(item["properties"]) == {
            "event_properties",
            "derived_properties",
            "app_properties",
            "system_properties",
        }
