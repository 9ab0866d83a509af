"""Changing, disabling, deleting webhooks and rotating their secrets, through the HTTP API."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import AppFactory, RunningApp
from tests.support.secrets import stored_secrets

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"
GIVEN_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PROJECT = "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22"


async def test_get_patch_delete_and_rotate_of_unknown_or_malformed_uuids(herald: RunningApp) -> None:
    client = herald.client
    unknown = new_uuid()
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", None),
    ):
        response = await client.request(method, f"{SUBSCRIBERS}/{unknown}{suffix}", json=body)
        assert response.status_code == 404, (method, suffix)
        assert unknown in response.json()["detail"]
        malformed = await client.request(method, f"{SUBSCRIBERS}/not-a-uuid{suffix}", json=body)
        assert malformed.status_code == 422, (method, suffix)
        assert malformed.json()["detail"][0]["loc"] == ["path", "uuid"]


async def test_patch_changes_given_fields_and_replaces_subscriptions(herald: RunningApp) -> None:
    client = herald.client
    created = await create_webhook(
        client, subscriptions=[{"event_type": "project:*"}, {"event_type": "*:failed"}]
    )
    path = f"{SUBSCRIBERS}/{created['uuid']}"
    changes = {
        "name": "new name",
        "url": "https://example.com/v2",
        "verify_ssl": False,
        "content_type": "application/x-www-form-urlencoded",
        "subscriptions": [{"event_type": "jupyter:*"}, {"event_type": "jupyter:*"}],
    }
    response = await client.patch(path, json=changes)
    assert response.status_code == 200, response.text
    patched = response.json()
    for key in ("name", "url", "verify_ssl", "content_type"):
        assert patched[key] == changes[key]
    assert patched["subscriptions"] == [{"event_type": "jupyter:*"}]
    assert patched["updated_at"] > created["updated_at"]
    assert patched["created_at"] == created["created_at"]
    assert (await client.get(path)).json() == patched

    untouched = await client.patch(path, json={"enabled": True})
    assert untouched.json()["subscriptions"] == [{"event_type": "jupyter:*"}]
    emptied = await client.patch(path, json={"subscriptions": []})
    assert emptied.json()["subscriptions"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"url": None},
        {"enabled": None},
        {"subscriptions": None},
        {"format": None},
        {"name": "x" * 101},
        {"url": "mailto:someone@example.com"},
        {"subscriptions": [{"event_type": "*", "project_uuid": PROJECT}]},
        {"type": "analytics"},
        {"secret": None},
    ],
)
async def test_patch_validation_errors_are_422_and_change_nothing(
    herald: RunningApp, body: dict[str, Any]
) -> None:
    created = await create_webhook(herald.client, subscriptions=[{"event_type": "project:*"}])
    path = f"{SUBSCRIBERS}/{created['uuid']}"
    response = await herald.client.patch(path, json=body)
    assert response.status_code == 422, response.text
    [key] = body
    assert response.json()["detail"][0]["loc"][:2] == ["body", key]
    after = (await herald.client.get(path)).json()
    assert after == {k: v for k, v in created.items() if k != "secret"}


async def test_disabling_fails_pending_deliveries_and_enabling_clears_the_reason(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    created = await create_webhook(client, subscriptions=[{"event_type": "*"}])
    path = f"{SUBSCRIBERS}/{created['uuid']}"
    await ingest(client, event_of("project:created"))
    disabled = (await client.patch(path, json={"enabled": False})).json()
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"]
    [delivery] = (await client.get("/api/v1/deliveries", params={"subscriber_uuid": created["uuid"]})).json()[
        "items"
    ]
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "subscriber disabled"
    assert (await ingest(client, event_of("project:created")))["deliveries"] == 0

    await db.execute(
        "UPDATE subscribers SET failing_since = now() - interval '1 day' WHERE uuid = $1", created["uuid"]
    )
    enabled = (await client.patch(path, json={"enabled": True})).json()
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None
    assert enabled["failing_since"] is None
    assert (await ingest(client, event_of("project:created")))["deliveries"] == 1


async def test_an_auto_disabled_subscriber_shows_its_reason_and_failure_clock(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    created = await create_webhook(herald.client, subscriptions=[])
    await db.execute(
        "UPDATE subscribers SET enabled = false, disabled_reason = 'receiver answered 410 Gone', "
        "failing_since = now() - interval '6 days', last_success_at = now() - interval '7 days' "
        "WHERE uuid = $1",
        created["uuid"],
    )
    shown = (await herald.client.get(f"{SUBSCRIBERS}/{created['uuid']}")).json()
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "receiver answered 410 Gone"
    assert shown["failing_since"] is not None
    assert shown["last_success_at"] < shown["failing_since"]


async def test_delete_removes_the_subscriber_and_cancels_its_pending_deliveries(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    created = await create_webhook(client, subscriptions=[{"event_type": "*"}])
    other = await create_webhook(client, subscriptions=[{"event_type": "*"}])
    uuid = created["uuid"]
    for _ in range(3):
        await ingest(client, event_of("project:created"))
    # One delivered, one in flight, one pending.
    rows = await db.fetch("SELECT uuid FROM deliveries WHERE subscriber_uuid = $1 ORDER BY seq", uuid)
    await db.execute(
        "UPDATE deliveries SET status = 'delivered', delivered_at = now() WHERE uuid = $1", rows[0]["uuid"]
    )
    await db.execute(
        "UPDATE deliveries SET status = 'delivering', lease_token = gen_random_uuid(), "
        "lease_expires_at = now() + interval '1 minute' WHERE uuid = $1",
        rows[1]["uuid"],
    )
    response = await client.delete(f"{SUBSCRIBERS}/{uuid}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{SUBSCRIBERS}/{uuid}")).status_code == 404
    assert (await client.delete(f"{SUBSCRIBERS}/{uuid}")).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM subscriptions WHERE subscriber_uuid = $1", uuid) == 0

    items = (await client.get("/api/v1/deliveries", params={"subscriber_uuid": uuid})).json()["items"]
    assert sorted(item["status"] for item in items) == ["cancelled", "cancelled", "delivered"]
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE lease_token IS NOT NULL") == 0
    others = (await client.get("/api/v1/deliveries", params={"subscriber_uuid": other["uuid"]})).json()[
        "items"
    ]
    assert [item["status"] for item in others] == ["pending"] * 3
    assert (await ingest(client, event_of("project:created")))["deliveries"] == 1


async def test_rotate_secret_keeps_the_previous_one_for_the_grace_period(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(secret_rotation_grace_seconds=3600) as running:
        created = await create_webhook(running.client, subscriptions=[], secret=GIVEN_SECRET)
        path = f"{SUBSCRIBERS}/{created['uuid']}/rotate-secret"
        before = datetime.now(UTC)
        first = await running.client.post(path)
        assert first.status_code == 200
        assert list(first.json()) == ["secret"]
        new_secret = first.json()["secret"]
        assert new_secret != GIVEN_SECRET
        assert len(base64.b64decode(new_secret.removeprefix("whsec_"))) == 32
        assert await stored_secrets(db, created["uuid"]) == (new_secret, GIVEN_SECRET)
        expires = await db.fetchval(
            "SELECT previous_secret_expires_at FROM subscribers WHERE uuid = $1", created["uuid"]
        )
        assert before + timedelta(seconds=3590) < expires < datetime.now(UTC) + timedelta(seconds=3610)

        # At most one previous secret: the one before the newest.
        newest = (await running.client.post(path)).json()["secret"]
        assert await stored_secrets(db, created["uuid"]) == (newest, new_secret)


async def test_patching_the_secret_rotates_to_the_given_one(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    created = await create_webhook(herald.client, subscriptions=[])
    path = f"{SUBSCRIBERS}/{created['uuid']}"
    response = await herald.client.patch(path, json={"secret": GIVEN_SECRET})
    assert response.status_code == 200
    assert await stored_secrets(db, created["uuid"]) == (GIVEN_SECRET, created["secret"])
    # The same secret again changes nothing (the previous one is not overwritten by itself).
    await herald.client.patch(path, json={"secret": GIVEN_SECRET})
    assert await stored_secrets(db, created["uuid"]) == (GIVEN_SECRET, created["secret"])
