"""Operational events produced by the real paths: a receiver that fails, answers 410, recovers;
a PATCH; the no-loop rule; matching only by herald: patterns; the feed and /metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, eventually, wait_for_statuses
from tests.support.receiver import Receiver, Reply, running_receiver

WATCH_ALL = [{"event_type": "herald:*"}]
CATALOG_ONLY = [{"event_type": "project:*"}]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def bodies(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body)["event"] for r in receiver.on(path)]


async def operational(db: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT CAST(payload AS text) AS p FROM events WHERE type LIKE 'herald:%' ORDER BY seq"
    )
    return [json.loads(row["p"]) for row in rows]


async def test_410_reports_failed_and_disabled_to_a_herald_subscriber(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/gone", then=Reply(410))
    async with app_factory(**FAST) as herald:
        watcher = await create_webhook(herald.client, receiver.url("/watch"), subscriptions=WATCH_ALL)
        hook = await create_webhook(herald.client, receiver.url("/gone"), subscriptions=CATALOG_ONLY)
        event = await ingest(herald.client)
        await receiver.wait_for(2, "/watch")
    got = {b["type"]: b for b in bodies(receiver, "/watch")}
    assert set(got) == {"herald:delivery:failed", "herald:subscriber:disabled"}
    failed = got["herald:delivery:failed"]
    assert set(failed) == {"uuid", "type", "timestamp", "subscriber", "delivery"}
    assert failed["subscriber"]["uuid"] == hook["uuid"]
    assert failed["subscriber"]["project_uuid"] is None
    assert failed["delivery"]["event_uuid"] == event["uuid"]
    assert failed["delivery"]["event_type"] == "project:created"
    assert failed["delivery"]["last_status_code"] == 410
    assert failed["delivery"]["attempts_count"] == 1
    disabled = got["herald:subscriber:disabled"]
    assert "delivery" not in disabled
    assert disabled["subscriber"]["enabled"] is False
    assert "410" in disabled["subscriber"]["disabled_reason"]
    assert watcher["uuid"] not in {b["subscriber"]["uuid"] for b in got.values()}


async def test_failing_is_reported_once_then_recovered(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/flaky", Reply(500), Reply(500), Reply(500), then=Reply(200))
    # The circuit stays closed: these reports are about the deliveries.
    settings = FAST | {
        "retry_schedule": "50ms,50ms,50ms,50ms",
        "failing_after_attempts": 2,
        "circuit_failures": 100,
    }
    async with app_factory(**settings) as herald:
        await create_webhook(herald.client, receiver.url("/watch"), subscriptions=WATCH_ALL)
        hook = await create_webhook(herald.client, receiver.url("/flaky"), subscriptions=CATALOG_ONLY)
        await ingest(herald.client)
        await receiver.wait_for(2, "/watch")
        await wait_for_statuses(db, {"delivered": 1}, hook["uuid"])
    types = [b["type"] for b in await operational(db)]
    assert types == ["herald:delivery:failing", "herald:delivery:recovered"]
    failing, recovered = await operational(db)
    assert failing["delivery"]["attempts_count"] == 2
    assert failing["delivery"]["last_error"] == "HTTP 500"
    assert recovered["delivery"]["attempts_count"] == 4
    assert recovered["delivery"]["last_status_code"] == 200


async def test_out_of_attempts_reports_failing_once_and_failed(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/down", then=Reply(503))
    # The circuit stays closed: these reports are about the deliveries.
    settings = FAST | {
        "retry_schedule": "50ms,50ms,50ms,50ms",
        "failing_after_attempts": 2,
        "circuit_failures": 100,
    }
    async with app_factory(**settings) as herald:
        hook = await create_webhook(herald.client, receiver.url("/down"), subscriptions=CATALOG_ONLY)
        await ingest(herald.client)
        await wait_for_statuses(db, {"failed": 1}, hook["uuid"])
    types = [b["type"] for b in await operational(db)]
    assert types == ["herald:delivery:failing", "herald:delivery:failed"]
    assert len(receiver.on("/down")) == 5


async def test_sustained_failure_reports_disabled(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", then=Reply(500))
    settings = FAST | {"retry_schedule": "100ms,100ms,100ms,100ms,100ms,100ms", "disable_after_seconds": 0.25}
    async with app_factory(**settings) as herald:
        hook = await create_webhook(herald.client, receiver.url(), subscriptions=CATALOG_ONLY)
        await ingest(herald.client)

        async def reported() -> bool:
            return any(b["type"] == "herald:subscriber:disabled" for b in await operational(db))

        await eventually(reported, timeout_s=5)
    disabled = [b for b in await operational(db) if b["type"] == "herald:subscriber:disabled"]
    assert len(disabled) == 1
    assert disabled[0]["subscriber"]["uuid"] == hook["uuid"]
    assert disabled[0]["subscriber"]["disabled_reason"].startswith("failing continuously since ")


async def patch_enabled(herald: RunningApp, uuid: str, enabled: bool) -> None:
    response = await herald.client.patch(f"/api/v1/subscribers/{uuid}", json={"enabled": enabled})
    assert response.status_code == 200, response.text


async def test_patch_disable_and_enable_are_reported_and_listed_in_the_feed(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    watcher = await create_webhook(herald.client, subscriptions=[{"event_type": "herald:subscriber:*"}])
    everything = await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    hook = await create_webhook(herald.client, subscriptions=CATALOG_ONLY, name="watched")
    await patch_enabled(herald, hook["uuid"], False)
    await patch_enabled(herald, hook["uuid"], False)  # already disabled: nothing to report
    await patch_enabled(herald, hook["uuid"], True)
    feed = (await herald.client.get("/api/v1/events", params={"type": "herald:*"})).json()["items"]
    assert [e["type"] for e in feed] == ["herald:subscriber:enabled", "herald:subscriber:disabled"]
    assert feed[1]["subscriber"] == {
        "uuid": hook["uuid"],
        "name": "watched",
        "project_uuid": None,
        "enabled": False,
        "disabled_reason": "disabled through the API",
    }
    assert feed[0]["subscriber"]["enabled"] is True
    star = (await herald.client.get("/api/v1/events", params={"type": "*"})).json()["items"]
    assert star == []
    rows = await db.fetch("SELECT subscriber_uuid::text AS s, count(*) AS n FROM deliveries GROUP BY 1")
    per_subscriber = {row["s"]: row["n"] for row in rows}
    assert per_subscriber == {watcher["uuid"]: 2}  # "*" never matches them
    assert everything["uuid"] not in per_subscriber
    metrics = (await herald.client.get("/metrics")).text
    assert 'herald_operational_events_total{type="herald:subscriber:disabled"} 1.0' in metrics
    assert 'herald_operational_events_total{type="herald:subscriber:enabled"} 1.0' in metrics


async def test_a_project_scope_matches_no_unowned_webhook(herald: RunningApp, db: asyncpg.Connection) -> None:
    project = "7b0f3c9e-1f1a-4d55-9a6e-2f6f0c1d9a11"
    await create_webhook(herald.client, subscriptions=[{"event_type": "herald:*", "project_uuid": project}])
    hook = await create_webhook(herald.client, subscriptions=CATALOG_ONLY)
    await patch_enabled(herald, hook["uuid"], False)
    assert [b["type"] for b in await operational(db)] == ["herald:subscriber:disabled"]
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_scopes_follow_the_project_that_owns_the_webhook(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    ours, theirs = "7b0f3c9e-1f1a-4d55-9a6e-2f6f0c1d9a21", "7b0f3c9e-1f1a-4d55-9a6e-2f6f0c1d9a22"
    owned_watcher = await create_webhook(herald.client, subscriptions=WATCH_ALL, project_uuid=ours)
    scoped_watcher = await create_webhook(
        herald.client, subscriptions=[{"event_type": "herald:*", "project_uuid": ours}]
    )
    mine = await create_webhook(herald.client, subscriptions=CATALOG_ONLY, project_uuid=ours, name="mine")
    other = await create_webhook(herald.client, subscriptions=CATALOG_ONLY, project_uuid=theirs)
    unowned = await create_webhook(herald.client, subscriptions=CATALOG_ONLY)
    for hook in (mine, other, unowned):
        await patch_enabled(herald, hook["uuid"], False)
    [about_mine, about_other, about_unowned] = await operational(db)
    assert about_mine["subscriber"] | {"enabled": None} == {
        "uuid": mine["uuid"],
        "name": "mine",
        "project_uuid": ours,
        "enabled": None,
        "disabled_reason": about_mine["subscriber"]["disabled_reason"],
    }
    assert about_other["subscriber"]["project_uuid"] == theirs
    assert about_unowned["subscriber"]["project_uuid"] is None
    rows = await db.fetch("SELECT subscriber_uuid, event_uuid FROM deliveries ORDER BY subscriber_uuid")
    received = {(str(r["subscriber_uuid"]), str(r["event_uuid"])) for r in rows}
    assert received == {
        (owned_watcher["uuid"], about_mine["uuid"]),
        (scoped_watcher["uuid"], about_mine["uuid"]),
    }


async def test_no_operational_event_about_a_delivery_of_an_operational_event(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/watch", then=Reply(500))
    settings = FAST | {"retry_schedule": "50ms,50ms,50ms", "failing_after_attempts": 1}
    async with app_factory(**settings) as herald:
        watcher = await create_webhook(herald.client, receiver.url("/watch"), subscriptions=WATCH_ALL)
        hook = await create_webhook(herald.client, subscriptions=CATALOG_ONLY)
        await patch_enabled(herald, hook["uuid"], False)
        await wait_for_statuses(db, {"failed": 1}, watcher["uuid"])
    assert len(receiver.on("/watch")) == 4
    assert [b["type"] for b in await operational(db)] == ["herald:subscriber:disabled"]


async def test_operational_types_are_listed_and_cannot_be_ingested(herald: RunningApp) -> None:
    items = (await herald.client.get("/api/v1/event-types")).json()["items"]
    flags = {item["name"]: item["operational"] for item in items}
    assert [name for name, flag in flags.items() if flag] == [
        "herald:subscriber:disabled",
        "herald:subscriber:enabled",
        "herald:delivery:failing",
        "herald:delivery:failed",
        "herald:delivery:recovered",
        "herald:subscriber:circuit-opened",
        "herald:subscriber:circuit-closed",
    ]
    assert flags["project:created"] is False
    assert next(i for i in items if i["name"] == "herald:delivery:failed")["optional_filters"] == [
        ["project_uuid"]
    ]
    response = await herald.client.post("/api/v1/events", json={"type": "herald:subscriber:disabled"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "type"]
    job_scope = [
        {
            "event_type": "herald:*",
            "project_uuid": "7b0f3c9e-1f1a-4d55-9a6e-2f6f0c1d9a11",
            "job_uuid": "7b0f3c9e-1f1a-4d55-9a6e-2f6f0c1d9a12",
        }
    ]
    bad = await herald.client.post(
        "/api/v1/subscribers/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:9/", "subscriptions": job_scope},
    )
    assert bad.status_code == 422
