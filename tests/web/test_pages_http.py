"""Console pages through the app in-process (no browser): sessions in the database, the open
console without keys, error pages, forms and their checks."""

from __future__ import annotations

import hashlib
import re
from uuid import uuid4

import asyncpg
import httpx
import pytest

from service.core.auth_throttle import MAX_FAILURES
from tests.support.api import create_webhook, event_of, ingest
from tests.support.app import AppFactory, RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

KEYS = "admin:page-admin,ingest:page-ingest"
ORIGIN = {"Origin": "http://herald.test"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str = "page-admin") -> httpx.Response:
    form = await client.get("/ui/login")
    return await client.post("/ui/login", data={"api_key": key, "csrf_token": csrf_of(form)}, headers=ORIGIN)


async def test_with_no_api_keys_the_console_opens_without_signing_in(herald: RunningApp) -> None:
    overview = await herald.client.get("/ui/")
    assert overview.status_code == 200
    assert 'data-testid="outcomes-chart"' in overview.text
    assert "Sign out" not in overview.text
    login = await herald.client.get("/ui/login")
    assert login.status_code == 303
    assert login.headers["location"] == "/ui/"


async def test_a_session_lives_in_the_database_and_works_on_another_replica(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(api_keys=KEYS) as first, app_factory(api_keys=KEYS) as second:
        signed = await sign_in(first.client)
        assert signed.status_code == 303
        token = first.client.cookies["herald_session"]
        assert "HttpOnly" in signed.headers["set-cookie"]
        assert "SameSite=strict" in signed.headers["set-cookie"]
        assert "Max-Age=43200" in signed.headers["set-cookie"]
        [row] = await db.fetch("SELECT token_hash, expires_at - created_at AS lifetime FROM console_sessions")
        assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
        assert row["lifetime"].total_seconds() == 12 * 3600
        assert (await second.client.get("/ui/webhooks", cookies={"herald_session": token})).status_code == 200
    async with app_factory(api_keys=KEYS) as restarted:
        cookies = {"herald_session": token}
        assert (await restarted.client.get("/ui/webhooks", cookies=cookies)).status_code == 200
        await db.execute("UPDATE console_sessions SET expires_at = now() - interval '1 second'")
        expired = await restarted.client.get("/ui/webhooks", cookies=cookies)
        assert expired.status_code == 303
        assert expired.headers["location"] == "/ui/login"


async def test_signing_in_needs_the_form_token_and_an_admin_key(app_factory: AppFactory) -> None:
    async with app_factory(api_keys=KEYS) as running:
        client = running.client
        await client.get("/ui/login")
        no_token = await client.post("/ui/login", data={"api_key": "page-admin"}, headers=ORIGIN)
        assert no_token.status_code == 403
        assert (await sign_in(client, "page-ingest")).status_code == 401
        assert "herald_session" not in client.cookies
        assert (await client.get("/ui/deliveries")).status_code == 303


async def test_unknown_and_malformed_uuids_answer_an_html_404(herald: RunningApp) -> None:
    client = herald.client
    analytics = herald.state.installation.analytics_subscriber_uuid
    for path in (
        f"/ui/webhooks/{uuid4()}",
        "/ui/webhooks/not-a-uuid",
        f"/ui/webhooks/{analytics}",
        f"/ui/deliveries/{uuid4()}",
        f"/ui/events/{uuid4()}",
    ):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert (await client.get(f"/api/v1/subscribers/{uuid4()}")).headers["content-type"] == "application/json"


async def test_form_problems_are_shown_and_nothing_is_created(herald: RunningApp) -> None:
    client = herald.client
    form = await client.get("/ui/webhooks/new")
    fields = {
        "csrf_token": csrf_of(form),
        "name": "Needs fixing",
        "url": "ftp://example.com/hook",
        "event_type": "jupyter:image-build:failed",
        "project_uuid": str(uuid4()),
    }
    answer = await client.post("/ui/webhooks/new", data=fields, headers=ORIGIN)
    assert answer.status_code == 422
    assert "url must be an http:// or https:// URL" in answer.text
    fields["url"] = "https://example.com/hook"
    answer = await client.post("/ui/webhooks/new", data=fields, headers=ORIGIN)
    assert answer.status_code == 422
    assert "cannot be scoped to a project" in answer.text
    assert 'value="Needs fixing"' in answer.text  # what was typed stays
    listed = (await client.get("/api/v1/subscribers?type=webhook")).json()
    assert listed["items"] == []


async def test_edit_replaces_the_subscriptions_and_recover_reschedules_a_window(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    project = str(uuid4())
    hook = await create_webhook(
        client, subscriptions=[{"event_type": "project:created", "project_uuid": project}]
    )
    edit = await client.get(f"/ui/webhooks/{hook['uuid']}/edit")
    assert f'value="{project}"' in edit.text
    fields = {
        "csrf_token": csrf_of(edit),
        "name": "Renamed",
        "url": hook["url"],
        "content_type": "application/json",
        "event_type": ["project:created", "project:deleted"],
        "patterns": "project:*:failed",
    }
    saved = await client.post(f"/ui/webhooks/{hook['uuid']}/edit", data=fields, headers=ORIGIN)
    assert saved.status_code == 303
    stored = (await client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()
    assert stored["name"] == "Renamed"
    assert stored["verify_ssl"] is False  # the box was not ticked
    assert sorted(s["event_type"] for s in stored["subscriptions"]) == [
        "project:*:failed",
        "project:created",
        "project:deleted",
    ]
    await ingest(client, event_of("project:created"))
    await db.execute("UPDATE deliveries SET status = 'failed' WHERE subscriber_kind = 'webhook'")
    page = await client.get(f"/ui/webhooks/{hook['uuid']}")
    fields = {"csrf_token": csrf_of(page), "since": "2000-01-01T00:00"}
    recovered = await client.post(f"/ui/webhooks/{hook['uuid']}/recover", data=fields, headers=ORIGIN)
    assert recovered.status_code == 200
    assert "1 failed delivery is due again now." in recovered.text
    assert await db.fetchval("SELECT status FROM deliveries WHERE subscriber_kind = 'webhook'") == "pending"


async def test_the_delivery_log_filters_by_status_code_and_time(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    hook = await create_webhook(client)
    for _ in range(3):
        await ingest(client, event_of("project:created"))
    rows = await db.fetch("SELECT uuid FROM deliveries WHERE subscriber_kind = 'webhook' ORDER BY seq")
    await db.execute(
        "INSERT INTO delivery_attempts (delivery_uuid, number, started_at, duration_ms, status_code) "
        "VALUES ($1, 1, now(), 5, 500)",
        rows[0]["uuid"],
    )
    await db.execute("UPDATE deliveries SET status = 'failed' WHERE uuid = $1", rows[0]["uuid"])
    await db.execute(
        "UPDATE deliveries SET created_at = '2001-01-01T00:00Z' WHERE uuid = $1", rows[1]["uuid"]
    )

    async def shown(query: str) -> int:
        page = await client.get(f"/ui/deliveries?webhook={hook['uuid']}&{query}")
        assert page.status_code == 200
        return page.text.count('data-testid="delivery-row"')

    assert await shown("") == 3
    assert await shown("code=500") == 1
    assert await shown("status=failed") == 1
    assert await shown("status=pending") == 2
    assert await shown("until=2002-01-01T00:00") == 1
    assert await shown("since=2002-01-01T00:00") == 2
    bad = await client.get("/ui/deliveries?code=abc&since=yesterday")
    assert "HTTP status must be a number" in bad.text
    assert "Since must be a date and time" in bad.text


async def test_a_session_ends_when_its_key_is_no_longer_configured(app_factory: AppFactory) -> None:
    async with app_factory(api_keys=KEYS) as running:
        await sign_in(running.client)
        cookies = {"herald_session": running.client.cookies["herald_session"]}
    async with app_factory(api_keys="admin:another-admin-key") as rotated:
        answer = await rotated.client.get("/ui/webhooks", cookies=cookies)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login"


async def test_failed_sign_ins_are_throttled_per_address_across_replicas(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory(api_keys=KEYS) as first, app_factory(api_keys=KEYS) as second:
        for attempt in range(MAX_FAILURES):
            client = (first if attempt % 2 else second).client
            assert (await sign_in(client, "wrong")).status_code == 401
        refused = await sign_in(first.client)  # the right key, but too late
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
        assert "herald_session" not in first.client.cookies
        assert await db.fetchval("SELECT sum(failures) FROM console_sign_ins") == MAX_FAILURES
        await db.execute("UPDATE console_sign_ins SET minute = minute - interval '11 minutes'")
        assert (await sign_in(second.client)).status_code == 303


async def test_operational_events_show_in_the_feed_with_the_webhook_they_are_about(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    hook = await create_webhook(client, name="flaky receiver")
    await ingest(client, event_of("project:created"))
    patched = await client.patch(f"/api/v1/subscribers/{hook['uuid']}", json={"enabled": False})
    assert patched.status_code == 200, patched.text
    event_uuid = await db.fetchval("SELECT uuid FROM events WHERE type = 'herald:subscriber:disabled'")
    assert event_uuid is not None

    async def rows(query: str) -> list[str]:
        page = await client.get(f"/ui/events?{query}")
        assert page.status_code == 200
        return re.findall(r'data-testid="event-row".*?</tr>', page.text, re.S)

    [operational] = await rows("type=herald:*")
    assert "herald:subscriber:disabled" in operational
    assert "webhook flaky receiver" in operational
    # "*" in the feed's type filter is every catalog type, never an operational one.
    assert all("herald:" not in row for row in await rows("type=*"))
    assert len(await rows("")) == 2
    event_page = await client.get(f"/ui/events/{event_uuid}")
    assert event_page.status_code == 200
    assert "flaky receiver" in event_page.text
    types_page = await client.get("/ui/event-types")
    for name in ("herald:subscriber:disabled", "herald:delivery:failing", "herald:delivery:recovered"):
        assert name in types_page.text


async def test_the_form_sets_and_clears_the_delivery_controls(herald: RunningApp) -> None:
    client = herald.client
    form = await client.get("/ui/webhooks/new")
    assert 'name="rate_limit_per_minute"' in form.text
    assert 'name="ordered"' in form.text
    fields = {
        "csrf_token": csrf_of(form),
        "name": "Paced",
        "url": "https://hooks.slack.com/services/T0/B0/x",
        "event_type": "project:created",
        "rate_limit_per_minute": "abc",
        "ordered": "on",
    }
    refused = await client.post("/ui/webhooks/new", data=fields, headers=ORIGIN)
    assert refused.status_code == 422
    assert 'id="rate_limit_per_minute-error"' in refused.text
    assert (await client.get("/api/v1/subscribers?type=webhook")).json()["items"] == []
    # Left empty at creation: the chat format's default.
    created = await client.post(
        "/ui/webhooks/new", data=fields | {"rate_limit_per_minute": ""}, headers=ORIGIN
    )
    assert created.status_code == 201  # the page showing the secret once
    [hook] = (await client.get("/api/v1/subscribers?type=webhook")).json()["items"]
    assert (hook["rate_limit_per_minute"], hook["ordered"]) == (60, True)
    page = await client.get(f"/ui/webhooks/{hook['uuid']}")
    assert "60 per minute" in page.text
    edit = await client.get(f"/ui/webhooks/{hook['uuid']}/edit")
    assert 'name="rate_limit_per_minute" value="60"' in edit.text
    changed = {key: value for key, value in fields.items() if key != "ordered"}
    changed |= {"csrf_token": csrf_of(edit), "rate_limit_per_minute": "120"}
    saved = await client.post(f"/ui/webhooks/{hook['uuid']}/edit", data=changed, headers=ORIGIN)
    assert saved.status_code == 303
    stored = (await client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()
    assert (stored["rate_limit_per_minute"], stored["ordered"]) == (120, False)
    # Emptied when editing: no limit.
    changed |= {"rate_limit_per_minute": ""}
    saved = await client.post(f"/ui/webhooks/{hook['uuid']}/edit", data=changed, headers=ORIGIN)
    assert saved.status_code == 303
    assert (await client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()["rate_limit_per_minute"] is None
