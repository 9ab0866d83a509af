"""Opting out: nothing new is queued, what was queued is cancelled, the start-up says so once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from tests.support.api import ingest_many
from tests.support.app import AppFactory
from tests.support.event_samples import sample_event
from tests.support.posthog_receiver import TELEMETRY, running_posthog

OFF_SETTINGS: list[dict[str, Any]] = [
    {"telemetry_url": "http://127.0.0.1:9", "telemetry_disabled": True},
    {"telemetry_url": None},
]


async def _analytics_statuses(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE subscriber_kind = 'analytics' GROUP BY status"
    )
    return {row["status"]: row["n"] for row in rows}


@pytest.mark.parametrize("off", OFF_SETTINGS)
async def test_with_telemetry_off_ingest_and_relay_queue_nothing(
    app_factory: AppFactory, db: asyncpg.Connection, off: dict[str, Any]
) -> None:
    async with app_factory(**off) as herald:
        response = await herald.client.post("/api/v1/events", json=sample_event("project:created"))
        assert response.status_code == 202
        assert response.json()["deliveries"] == 0
        relayed = await herald.client.post("/api/v1/analytics", json={"event": "view:loaded"})
        assert relayed.status_code == 202
        body = relayed.json()
        assert body["queued"] is False
        assert body["reason"].startswith("telemetry is disabled")
    assert await _analytics_statuses(db) == {}
    assert await db.fetchval("SELECT count(*) FROM telemetry_heartbeats") == 0


async def test_opting_out_cancels_undelivered_telemetry_at_start(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with running_posthog() as posthog:
        # Queued while telemetry was on, but this replica does not dispatch.
        async with app_factory(
            **TELEMETRY | {"dispatcher_enabled": False}, telemetry_url=posthog.url
        ) as herald:
            await ingest_many(herald.client, 3)
        await db.execute(
            "UPDATE deliveries SET status = 'delivering', lease_token = gen_random_uuid(), "
            "lease_expires_at = now() + interval '1 minute' "
            "WHERE uuid = (SELECT uuid FROM deliveries WHERE subscriber_kind = 'analytics' LIMIT 1)"
        )
        await db.execute(
            "UPDATE deliveries SET status = 'delivered' "
            "WHERE uuid = (SELECT uuid FROM deliveries "
            "WHERE subscriber_kind = 'analytics' AND status = 'pending' LIMIT 1)"
        )
        assert await _analytics_statuses(db) == {"pending": 1, "delivering": 1, "delivered": 1}
        async with app_factory(**TELEMETRY, telemetry_url=posthog.url, telemetry_disabled=True):
            pass
        assert await _analytics_statuses(db) == {"cancelled": 2, "delivered": 1}
        errors = await db.fetch("SELECT DISTINCT last_error FROM deliveries WHERE status = 'cancelled'")
        assert [row["last_error"] for row in errors] == ["telemetry disabled"]
        # Turning telemetry back on does not resurrect them.
        async with app_factory(**TELEMETRY, telemetry_url=posthog.url):
            await asyncio.sleep(0.3)
        assert posthog.received == []


async def test_start_up_logs_once_where_telemetry_goes_without_the_full_url(
    app_factory: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    url = "http://user:pw-secret@127.0.0.1:9/secret-path?token=secret-token"
    async with app_factory(telemetry_url=url):
        pass
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("telemetry is")]
    assert lines == ["telemetry is on: anonymized events go to http://127.0.0.1"]
    assert "secret" not in caplog.text
    caplog.clear()
    async with app_factory(telemetry_url=url, telemetry_disabled=True):
        pass
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("telemetry is")]
    assert len(lines) == 1
    assert lines[0].startswith("telemetry is off: telemetry is disabled (HERALD_TELEMETRY_DISABLED=true)")
