"""The portal's destination policy: with HERALD_ALLOW_PRIVATE_DESTINATIONS on (as any loopback
receiver needs), a project's portal still may not aim Herald at a private address — not when it
makes or edits a webhook, not with **Send test**, and not at delivery time — unless
HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS is on too. Admins (API key, console) keep theirs."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from service import migrations
from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, delivery_of, wait_for_statuses
from tests.support.receiver import Receiver
from tests.web.test_pages_http import ORIGIN, csrf_of
from tests.web.test_portal_http import open_portal

PORTAL_SETTING = "HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS=true"


def new_hook(page: httpx.Response, url: str, **fields: Any) -> dict[str, Any]:
    """The new-webhook form as submitted from ``page``."""
    return {
        "csrf_token": csrf_of(page),
        "name": "portal hook",
        "url": url,
        "content_type": "application/json",
        "verify_ssl": "on",
        "event_type": ["project:created"],
    } | fields


async def test_the_portal_is_refused_private_destinations_that_admins_may_use(
    herald: RunningApp, receiver: Receiver
) -> None:
    project = new_uuid()
    private = receiver.url("/internal")
    client, _ = await open_portal(herald, project)
    form = await client.get("/portal/webhooks/new")
    for action in ("/portal/webhooks/new", "/portal/webhooks/new/test"):
        refused = await client.post(action, data=new_hook(form, private), headers=ORIGIN)
        assert refused.status_code == 422, action
        assert "is a loopback address, refused" in refused.text
        assert PORTAL_SETTING in refused.text
    # An admin's webhook owned by the project: the portal may use it, but not test or re-aim it.
    owned = await create_webhook(herald.client, private, project_uuid=project, name="admin's hook")
    page = await client.get(f"/portal/webhooks/{owned['uuid']}")
    tested = await client.post(
        f"/portal/webhooks/{owned['uuid']}/test", data={"csrf_token": csrf_of(page)}, headers=ORIGIN
    )
    assert tested.status_code == 200
    assert "destination 127.0.0.1 is a loopback address, refused" in tested.text
    edit = await client.get(f"/portal/webhooks/{owned['uuid']}/edit")
    kept = new_hook(edit, private, name="renamed")
    saved = await client.post(f"/portal/webhooks/{owned['uuid']}/edit", data=kept, headers=ORIGIN)
    assert saved.status_code == 422
    assert PORTAL_SETTING in saved.text
    assert receiver.on("/internal") == []
    assert (await herald.client.get(f"/api/v1/subscribers/{owned['uuid']}")).json()["name"] == "admin's hook"
    # The console (an admin) may: it tests, then creates.
    console = await herald.client.get("/ui/webhooks/new")
    admin_test = await herald.client.post(
        "/ui/webhooks/new/test", data=new_hook(console, private), headers=ORIGIN
    )
    assert admin_test.status_code == 200
    assert 'data-testid="test-result"' in admin_test.text
    await receiver.wait_for(1, "/internal")
    made = await herald.client.post("/ui/webhooks/new", data=new_hook(console, private), headers=ORIGIN)
    assert made.status_code == 201


async def test_with_the_portal_setting_too_the_portal_may_use_private_destinations(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(portal_allow_private_destinations=True) as running:
        client, _ = await open_portal(running, new_uuid())
        form = await client.get("/portal/webhooks/new")
        hook = new_hook(form, receiver.url("/dev"))
        tested = await client.post("/portal/webhooks/new/test", data=hook, headers=ORIGIN)
        assert tested.status_code == 200
        [ping] = await receiver.wait_for(1, "/dev")
        assert b'"type":"ping"' in ping.body.replace(b" ", b"")
        assert (await client.post("/portal/webhooks/new", data=hook, headers=ORIGIN)).status_code == 201
    assert await db.fetchval("SELECT url_from_portal FROM subscribers WHERE name = 'portal hook'") is True


async def test_a_webhook_made_in_the_portal_stays_held_to_public_destinations_at_delivery(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    project = new_uuid()
    async with app_factory(portal_allow_private_destinations=True) as running:  # a development setup...
        client, _ = await open_portal(running, project)
        form = await client.get("/portal/webhooks/new")
        made = await client.post(
            "/portal/webhooks/new", data=new_hook(form, receiver.url("/from-portal")), headers=ORIGIN
        )
        assert made.status_code == 201
        portal_hook = await db.fetchval("SELECT uuid::text FROM subscribers WHERE name = 'portal hook'")
        admin_hook = await create_webhook(
            running.client, receiver.url("/from-admin"), project_uuid=project, name="admin hook"
        )
        event = await ingest(running.client, event_of("project:created", project=project))
    async with app_factory(**FAST) as running:  # ...then the portal's setting is off again
        await wait_for_statuses(db, {"failed": 1}, portal_hook)
        await wait_for_statuses(db, {"delivered": 1}, admin_hook["uuid"])
        refused = await delivery_of(db, event["uuid"], portal_hook)
        assert refused["last_error"] == "destination 127.0.0.1 is a loopback address, refused"
        assert receiver.on("/from-portal") == []
        # An admin who sets the URL takes the webhook under the admins' policy.
        moved = await running.client.patch(
            f"/api/v1/subscribers/{portal_hook}", json={"url": receiver.url("/from-portal")}
        )
        assert moved.status_code == 200
        redelivered = await running.client.post(f"/api/v1/deliveries/{refused['uuid']}/redeliver")
        assert redelivered.status_code == 202, redelivered.text
        await receiver.wait_for(1, "/from-portal")


async def test_migration_0018_puts_the_webhooks_owned_then_under_the_portals_setting(
    database_url: str, db: asyncpg.Connection
) -> None:
    await asyncio.to_thread(migrations.downgrade_sync, database_url, "0017")
    insert = (
        "INSERT INTO subscribers (uuid, kind, name, url, secret, project_uuid) "
        "VALUES ($1::uuid, 'webhook', $2, 'http://127.0.0.1:9/hook', 'whsec_test', $3::uuid)"
    )
    await db.execute(insert, new_uuid(), "owned", new_uuid())
    await db.execute(insert, new_uuid(), "unowned", None)
    await migrations.upgrade(database_url)
    rows = await db.fetch(
        "SELECT name, url_from_portal FROM subscribers WHERE kind = 'webhook' ORDER BY name"
    )
    # Who made an owned webhook was not recorded: the portal's (stricter) setting is the safe guess.
    assert [(row["name"], row["url_from_portal"]) for row in rows] == [("owned", True), ("unowned", False)]
