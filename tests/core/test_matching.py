"""Matching, through the API: which subscribers an ingested event creates deliveries for."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import asyncpg
import pytest

from service.catalog import CATALOG, expand_pattern
from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

ALL_TYPES = list(CATALOG)
PATTERNS = [
    "project:created",
    "project:*",
    "*:failed",
    "*",
    "project:*:pipeline-run:failed",
    "jupyter:image-build:*",
    "project:cron-job:run:*",
    "project:**:succeeded",
    "*pipeline*",
]


async def _delivered_types(db: asyncpg.Connection) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for row in await db.fetch(
        "SELECT subscriber_uuid, event_type FROM deliveries WHERE subscriber_kind = 'webhook'"
    ):
        found[str(row["subscriber_uuid"])].add(row["event_type"])
    return found


async def test_patterns_match_exactly_the_catalog_types_they_expand_to(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    hooks = {
        pattern: await create_webhook(herald.client, subscriptions=[{"event_type": pattern}])
        for pattern in PATTERNS
    }
    response = await herald.client.post(
        "/api/v1/events/batch", json={"events": [sample_event(t) for t in ALL_TYPES]}
    )
    assert response.status_code == 202, response.text
    delivered = await _delivered_types(db)
    for pattern, hook in hooks.items():
        assert delivered[hook["uuid"]] == set(expand_pattern(pattern)), pattern
    # The ingest answer counts, per event, the subscribers whose pattern matches its type.
    for item in response.json()["items"]:
        expected = sum(1 for pattern in PATTERNS if item["type"] in expand_pattern(pattern))
        assert item["deliveries"] == expected, item["type"]
    assert sum(item["deliveries"] for item in response.json()["items"]) == await db.fetchval(
        "SELECT count(*) FROM deliveries"
    )


async def test_a_project_scoped_subscription_matches_only_its_project(herald: RunningApp) -> None:
    project = new_uuid()
    await create_webhook(herald.client, subscriptions=[{"event_type": "project:*", "project_uuid": project}])
    assert (await ingest(herald.client, event_of("project:created", project=project)))["deliveries"] == 1
    assert (await ingest(herald.client, event_of("project:one-off-job:failed", project=project)))[
        "deliveries"
    ] == 1
    assert (await ingest(herald.client, event_of("project:created", project=new_uuid())))["deliveries"] == 0
    assert (await ingest(herald.client, event_of("jupyter:image-build:failed")))["deliveries"] == 0


@pytest.mark.parametrize("pattern", ["project:one-off-job:*", "project:*-job:*"])
async def test_a_job_scoped_subscription_never_fires_for_another_job_of_its_project(
    herald: RunningApp, pattern: str
) -> None:
    project, job = new_uuid(), new_uuid()
    await create_webhook(
        herald.client, subscriptions=[{"event_type": pattern, "project_uuid": project, "job_uuid": job}]
    )
    cases = [
        (event_of("project:one-off-job:failed", project=project, job=job), 1),
        (event_of("project:one-off-job:pipeline-run:succeeded", project=project, job=job), 1),
        # The old notification service's bug: these fired too.
        (event_of("project:one-off-job:failed", project=project, job=new_uuid()), 0),
        (event_of("project:one-off-job:pipeline-run:succeeded", project=project, job=new_uuid()), 0),
        # Both scope values must match the event.
        (event_of("project:one-off-job:failed", project=new_uuid(), job=job), 0),
        (event_of("project:created", project=project), 0),
    ]
    for body, expected in cases:
        assert (await ingest(herald.client, body))["deliveries"] == expected, body["type"]


async def test_a_job_scoped_cron_subscription_matches_its_runs(herald: RunningApp) -> None:
    project, job = new_uuid(), new_uuid()
    await create_webhook(
        herald.client,
        subscriptions=[{"event_type": "project:cron-job:*", "project_uuid": project, "job_uuid": job}],
    )
    run_failed = "project:cron-job:run:pipeline-run:failed"
    assert (await ingest(herald.client, event_of(run_failed, project=project, job=job)))["deliveries"] == 1
    assert (await ingest(herald.client, event_of(run_failed, project=project, job=new_uuid())))[
        "deliveries"
    ] == 0
    assert (await ingest(herald.client, event_of("project:cron-job:paused", project=project, job=job)))[
        "deliveries"
    ] == 1


async def test_overlapping_subscriptions_make_one_delivery_per_subscriber(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    project = new_uuid()
    subscriptions: list[dict[str, Any]] = [
        {"event_type": "*"},
        {"event_type": "project:*"},
        {"event_type": "project:created"},
        {"event_type": "*:created"},
        {"event_type": "project:created", "project_uuid": project},
        {"event_type": "project:*", "project_uuid": project},
    ]
    first = await create_webhook(herald.client, subscriptions=subscriptions)
    second = await create_webhook(herald.client, subscriptions=subscriptions[:2])
    answer = await ingest(herald.client, event_of("project:created", project=project))
    assert answer["deliveries"] == 2
    rows = await db.fetch("SELECT subscriber_uuid FROM deliveries WHERE event_uuid = $1", answer["uuid"])
    assert sorted(str(row["subscriber_uuid"]) for row in rows) == sorted([first["uuid"], second["uuid"]])


async def test_batch_ingest_creates_deliveries_for_every_event(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    await create_webhook(herald.client, subscriptions=[{"event_type": "*:failed"}])
    types = ["project:created", "project:one-off-job:failed", "jupyter:image-build:failed"]
    response = await herald.client.post("/api/v1/events/batch", json={"events": [event_of(t) for t in types]})
    assert response.status_code == 202
    assert [item["deliveries"] for item in response.json()["items"]] == [1, 2, 2]
    for item in response.json()["items"]:
        count = await db.fetchval("SELECT count(*) FROM deliveries WHERE event_uuid = $1", item["uuid"])
        assert count == item["deliveries"]


async def test_a_bad_batch_item_writes_nothing(herald: RunningApp, db: asyncpg.Connection) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    bad = event_of("project:created")
    del bad["project"]
    events = [event_of("project:created"), event_of("project:deleted"), bad, event_of("project:created")]
    response = await herald.client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", "events", 2]
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_disabled_subscribers_get_no_deliveries(herald: RunningApp) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}], enabled=False)
    hook = await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    await herald.client.patch(f"/api/v1/subscribers/{hook['uuid']}", json={"enabled": False})
    assert (await ingest(herald.client, event_of("project:created")))["deliveries"] == 0


async def test_no_analytics_delivery_while_telemetry_is_off(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    answer = await ingest(herald.client, event_of("project:created"))
    assert answer["deliveries"] == 0
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_one_analytics_delivery_per_event_while_telemetry_is_on(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(telemetry_url="http://127.0.0.1:9") as running:
        hook = await create_webhook(running.client, subscriptions=[{"event_type": "project:*"}])
        analytics_uuid = running.state.installation.analytics_subscriber_uuid
        types = ["project:created", "jupyter:image-build:started", "project:pipeline:deleted"]
        response = await running.client.post(
            "/api/v1/events/batch", json={"events": [event_of(t) for t in types]}
        )
        assert [item["deliveries"] for item in response.json()["items"]] == [2, 1, 2]
        rows = await db.fetch("SELECT event_uuid, subscriber_uuid, subscriber_kind FROM deliveries")
        analytics = [row for row in rows if row["subscriber_kind"] == "analytics"]
        assert sorted(str(row["event_uuid"]) for row in analytics) == sorted(
            i["uuid"] for i in response.json()["items"]
        )
        assert {row["subscriber_uuid"] for row in analytics} == {analytics_uuid}
        webhook_rows = [row for row in rows if row["subscriber_kind"] == "webhook"]
        assert {str(row["subscriber_uuid"]) for row in webhook_rows} == {hook["uuid"]}
        # Telemetry payloads are not notification payloads.
        payload = await db.fetchval(
            "SELECT CAST(payload AS text) FROM deliveries WHERE subscriber_kind = 'analytics' LIMIT 1"
        )
        assert "event_properties" in payload


async def test_the_stored_payload_is_byte_for_byte_the_event_the_api_shows(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    response = await herald.client.post(
        "/api/v1/events/batch", json={"events": [sample_event(t) for t in ALL_TYPES]}
    )
    assert response.status_code == 202
    for item in response.json()["items"]:
        raw = (await herald.client.get(f"/api/v1/events/{item['uuid']}")).content
        assert raw.startswith(b'{"event":')
        event_bytes = raw[len(b'{"event":') : raw.rindex(b',"deliveries":')]
        stored = await db.fetchval(
            "SELECT CAST(payload AS text) FROM deliveries WHERE event_uuid = $1", item["uuid"]
        )
        assert stored.encode() == event_bytes, item["type"]


async def test_a_replayed_event_creates_no_new_deliveries(herald: RunningApp, db: asyncpg.Connection) -> None:
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    body = event_of("project:created")
    first = await ingest(herald.client, body)
    await create_webhook(herald.client, subscriptions=[{"event_type": "*"}])
    replay = await herald.client.post("/api/v1/events", json=body)
    assert replay.status_code == 200
    assert replay.json()["deliveries"] == first["deliveries"] == 1
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_subscribed_to_agrees_with_the_deliveries_ingest_creates(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    project, job = new_uuid(), new_uuid()
    client = herald.client
    subscription_sets: list[list[dict[str, Any]]] = [
        [{"event_type": "*"}],
        [{"event_type": "*:failed"}, {"event_type": "project:one-off-job:*", "project_uuid": project}],
        [{"event_type": "project:*", "project_uuid": project}],
        [{"event_type": "project:*-job:*", "project_uuid": project, "job_uuid": job}],
        [{"event_type": "project:one-off-job:failed"}],
        [{"event_type": "jupyter:*"}],
    ]
    for subscriptions in subscription_sets:
        await create_webhook(client, subscriptions=subscriptions)
    cases = [
        ("project:one-off-job:failed", project, job),
        ("project:one-off-job:failed", project, new_uuid()),
        ("project:one-off-job:failed", new_uuid(), job),
        ("project:cron-job:run:pipeline-run:failed", project, job),
        ("project:created", project, None),
        ("project:created", new_uuid(), None),
        ("jupyter:image-build:failed", None, None),
    ]
    for type_name, project_uuid, job_uuid in cases:
        answer = await ingest(client, event_of(type_name, project=project_uuid, job=job_uuid))
        rows = await db.fetch("SELECT subscriber_uuid FROM deliveries WHERE event_uuid = $1", answer["uuid"])
        params = {k: v for k, v in (("project_uuid", project_uuid), ("job_uuid", job_uuid)) if v is not None}
        listed = (await client.get(f"/api/v1/subscribers/subscribed-to/{type_name}", params=params)).json()[
            "items"
        ]
        assert sorted(item["uuid"] for item in listed) == sorted(str(row["subscriber_uuid"]) for row in rows)
        assert answer["deliveries"] == len(rows) > 0
