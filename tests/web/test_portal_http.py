"""The portal through the app in-process (no browser): one-time links, the project's scope on
every page and action, read-only sessions, and the portal's framing policy."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import AppFactory, RunningApp
from tests.web.test_pages_http import ORIGIN, csrf_of

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

LINKS = "/api/v1/portal-links"


async def make_link(client: httpx.AsyncClient, project: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(LINKS, json={"project_uuid": project, **fields})
    assert response.status_code == 201, response.text
    link: dict[str, Any] = response.json()
    return link


def portal_cookie(response: httpx.Response) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith("herald_portal=")]
    return cookie


def entry_path(link: dict[str, Any]) -> str:
    return str(link["url"]).removeprefix("http://herald.test")


async def enter(client: httpx.AsyncClient, link: dict[str, Any], **headers: str) -> httpx.Response:
    """The link's page, then its **Open portal** button (a POST from that page)."""
    page = await client.get(entry_path(link), headers=headers)
    assert page.status_code == 200, page.text
    return await client.post(entry_path(link), headers=ORIGIN | headers)


async def open_portal(
    herald: RunningApp, project: str, **fields: Any
) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """A fresh client holding a portal session of ``project`` (the link opened)."""
    link = await make_link(herald.client, project, **fields)
    client = httpx.AsyncClient(transport=herald.client._transport, base_url="http://herald.test")
    entered = await enter(client, link)
    assert entered.status_code == 303, entered.text
    assert entered.headers["location"] == "/portal/webhooks"
    return client, link


async def test_fetching_a_link_spends_nothing_and_its_button_opens_the_portal(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    link = await make_link(herald.client, new_uuid(), read_only=True)
    preview = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
    for _ in range(2):  # a preview, then a mail scanner: neither uses the link up
        page = await herald.client.get(entry_path(link), headers=preview)
        assert page.status_code == 200
        assert "set-cookie" not in page.headers
        assert '<button type="submit" class="button primary wide">Open portal</button>' in page.text
        assert f'action="{entry_path(link)}"' in page.text
        assert "portal · read-only" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["cache-control"] == "no-store"
    assert await db.fetchval("SELECT used_at FROM portal_links") is None
    assert await db.fetchval("SELECT count(*) FROM console_sessions") == 0
    visitor = httpx.AsyncClient(transport=herald.client._transport, base_url="http://herald.test")
    forged = await visitor.post(entry_path(link), headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403  # another site's page cannot sign a browser into this portal
    assert await db.fetchval("SELECT used_at FROM portal_links") is None
    opened = await visitor.post(entry_path(link), headers=ORIGIN)  # no cookie at all: a fresh visitor
    assert opened.status_code == 303
    assert opened.headers["location"] == "/portal/webhooks"
    assert [c.split("=")[0] for c in opened.headers.get_list("set-cookie")] == ["herald_portal"]
    assert (await visitor.get("/portal/webhooks")).status_code == 200
    for method in (visitor.get, visitor.post):
        spent = await method(entry_path(link), headers=ORIGIN)
        assert spent.status_code == 410
        assert "used already" in spent.text


async def test_a_link_opens_the_portal_once(herald: RunningApp, db: asyncpg.Connection) -> None:
    project = new_uuid()
    link = await make_link(herald.client, project, read_only=True)
    first = await enter(herald.client, link)
    assert first.status_code == 303
    cookie = portal_cookie(first)
    assert "Path=/portal" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    [row] = await db.fetch(
        "SELECT s.project_uuid::text, s.read_only, s.expires_at = l.expires_at AS same_end, l.used_at"
        " FROM console_sessions s JOIN portal_links l ON l.uuid = s.portal_link_uuid"
    )
    assert (row["project_uuid"], row["read_only"], row["same_end"]) == (project, True, True)
    assert row["used_at"] is not None
    page = await herald.client.get("/portal/webhooks")
    assert page.status_code == 200
    assert "portal · read-only" in page.text
    stranger = httpx.AsyncClient(transport=herald.client._transport, base_url="http://herald.test")
    path = entry_path(link)
    for again in (await stranger.get(path), await stranger.post(path, headers=ORIGIN)):
        assert again.status_code == 410
        assert "used already" in again.text
        assert "herald_portal" not in again.headers.get("set-cookie", "")
    assert await db.fetchval("SELECT count(*) FROM console_sessions") == 1
    unknown = await herald.client.get("/portal/enter/not-a-token")
    assert unknown.status_code == 410
    too_long = await herald.client.post("/portal/enter/" + "x" * 101, headers=ORIGIN)
    assert too_long.status_code == 410


async def test_an_expired_or_revoked_link_opens_nothing_and_revoking_ends_its_sessions(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    project = new_uuid()
    expired = await make_link(herald.client, project)
    await db.execute("UPDATE portal_links SET expires_at = now() - interval '1 second'")
    for gone in (
        await herald.client.get(entry_path(expired)),
        await herald.client.post(entry_path(expired), headers=ORIGIN),
    ):
        assert gone.status_code == 410
        assert "expired" in gone.text
    client, link = await open_portal(herald, project)
    assert (await client.get("/portal/webhooks")).status_code == 200
    assert (await herald.client.delete(f"{LINKS}/{link['uuid']}")).status_code == 204
    closed = await client.get("/portal/webhooks")
    assert closed.status_code == 401
    assert "Portal closed" in closed.text
    unused = await make_link(herald.client, project)
    await herald.client.delete(f"{LINKS}/{unused['uuid']}")
    for revoked in (
        await herald.client.get(entry_path(unused)),
        await herald.client.post(entry_path(unused), headers=ORIGIN),
    ):
        assert revoked.status_code == 410
        assert "revoked" in revoked.text
    assert await db.fetchval("SELECT count(*) FROM console_sessions") == 0


async def test_the_portal_shows_only_its_project(herald: RunningApp) -> None:
    project, other = new_uuid(), new_uuid()
    mine = await create_webhook(herald.client, project_uuid=project, name="mine hook")
    theirs = await create_webhook(herald.client, project_uuid=other, name="their hook")
    unowned = await create_webhook(herald.client, name="admin hook")
    my_event = await ingest(herald.client, event_of("project:created", project=project))
    their_event = await ingest(herald.client, event_of("project:created", project=other))
    their_delivery = await herald.client.get("/api/v1/deliveries", params={"subscriber_uuid": theirs["uuid"]})
    their_delivery_uuid = their_delivery.json()["items"][0]["uuid"]
    client, _ = await open_portal(herald, project)
    listing = await client.get("/portal/webhooks")
    assert "mine hook" in listing.text
    assert "their hook" not in listing.text
    assert "admin hook" not in listing.text
    assert (await client.get(f"/portal/webhooks/{mine['uuid']}")).status_code == 200
    deliveries = await client.get("/portal/deliveries")
    assert deliveries.text.count('data-testid="delivery-row"') == 1
    events = await client.get("/portal/events")
    assert my_event["uuid"] in events.text
    assert their_event["uuid"] not in events.text
    assert (await client.get(f"/portal/events/{my_event['uuid']}")).status_code == 200
    for path in (
        f"/portal/webhooks/{theirs['uuid']}",
        f"/portal/webhooks/{unowned['uuid']}",
        f"/portal/webhooks/{theirs['uuid']}/edit",
        f"/portal/deliveries/{their_delivery_uuid}",
        f"/portal/events/{their_event['uuid']}",
        f"/portal/events?project={other}",
        "/portal/webhooks/not-a-uuid",
    ):
        response = await client.get(path)
        assert response.status_code in (404, 200), path
        if response.status_code == 200:  # a filter on another project: nothing listed
            assert their_event["uuid"] not in response.text, path
        else:
            assert "Not found" in response.text, path
    page = await client.get(f"/portal/webhooks/{mine['uuid']}")
    refused = await client.post(
        f"/portal/webhooks/{theirs['uuid']}/disable", data={"csrf_token": csrf_of(page)}, headers=ORIGIN
    )
    assert refused.status_code == 404
    assert (await herald.client.get(f"/api/v1/subscribers/{theirs['uuid']}")).json()["enabled"] is True
    assert (await client.get("/portal/portal-links")).status_code == 404
    assert (await client.get("/ui/webhooks")).status_code == 200  # no keys: the console is open, as admin


async def test_a_read_only_portal_hides_changes_and_the_server_refuses_them(herald: RunningApp) -> None:
    project = new_uuid()
    hook = await create_webhook(herald.client, project_uuid=project, name="watched")
    client, _ = await open_portal(herald, project, read_only=True)
    page = await client.get(f"/portal/webhooks/{hook['uuid']}")
    assert page.status_code == 200
    for control in ("Send test", "Rotate secret", "Disable", "Delete", "Recover"):
        assert control not in page.text, control
    assert "New webhook" not in (await client.get("/portal/webhooks")).text
    token = {"csrf_token": csrf_of(page)}
    for path in (
        f"/webhooks/{hook['uuid']}/disable",
        f"/webhooks/{hook['uuid']}/rotate-secret",
        "/webhooks/new",
    ):
        refused = await client.post(f"/portal{path}", data=token | {"name": "x"}, headers=ORIGIN)
        assert refused.status_code == 403, path
    assert (await client.get("/portal/webhooks/new")).status_code == 403
    assert (await herald.client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()["enabled"] is True


async def test_a_webhook_created_in_the_portal_is_owned_by_the_project(herald: RunningApp) -> None:
    project = new_uuid()
    client, _ = await open_portal(herald, project)
    form = await client.get("/portal/webhooks/new")
    assert "jupyter:image-build:created" not in form.text  # types without a project: not offered
    assert 'name="project_uuid"' not in form.text
    body = {
        "csrf_token": csrf_of(form),
        "name": "portal hook",
        "url": "https://93.184.216.34/portal",  # public: the portal may not use private ones
        "content_type": "application/json",
        "verify_ssl": "on",
        "event_type": ["project:created", "project:deleted"],
    }
    created = await client.post("/portal/webhooks/new", data=body, headers=ORIGIN)
    assert created.status_code == 201, created.text
    assert 'data-testid="secret"' in created.text
    [hook] = (await herald.client.get("/api/v1/subscribers", params={"project_uuid": project})).json()[
        "items"
    ]
    assert hook["name"] == "portal hook"
    assert {s["project_uuid"] for s in hook["subscriptions"]} == {project}
    jupyter = body | {"event_type": [], "patterns": "jupyter:*"}
    refused = await client.post("/portal/webhooks/new", data=jupyter, headers=ORIGIN)
    assert refused.status_code == 422
    assert "without" in refused.text


async def test_console_and_portal_sessions_do_not_open_each_other(app_factory: AppFactory) -> None:
    keys = "admin:portal-admin"
    async with app_factory(api_keys=keys) as running:
        admin = {"Authorization": "Bearer portal-admin"}
        response = await running.client.post(LINKS, json={"project_uuid": new_uuid()}, headers=admin)
        link = response.json()
        entered = await enter(running.client, link)
        token = running.client.cookies["herald_portal"]
        assert entered.status_code == 303
        assert (await running.client.get("/portal/webhooks")).status_code == 200
        as_console = await running.client.get("/ui/webhooks", cookies={"herald_session": token})
        assert as_console.status_code == 303
        assert as_console.headers["location"] == "/ui/login"
        no_session = await running.client.get("/portal/webhooks", cookies={"herald_portal": "x"})
        assert no_session.status_code == 401


async def test_the_portal_may_be_framed_by_the_configured_sites_only(app_factory: AppFactory) -> None:
    async with app_factory() as running:
        portal = await running.client.get("/portal/webhooks")
        assert "frame-ancestors 'none'" in portal.headers["content-security-policy"]
        assert portal.headers["x-frame-options"] == "DENY"
    # Behind a TLS proxy that Herald trusts (the in-process client is 127.0.0.1).
    async with app_factory(
        portal_frame_ancestors="https://platform.example  'self'", proxy_headers=True
    ) as running:
        portal = await running.client.get("/portal/webhooks")
        assert portal.headers["content-security-policy"].endswith(
            "frame-ancestors https://platform.example 'self'"
        )
        assert "x-frame-options" not in portal.headers
        console = await running.client.get("/ui/webhooks")
        assert "frame-ancestors 'none'" in console.headers["content-security-policy"]
        assert console.headers["x-frame-options"] == "DENY"
        link = (await running.client.post(LINKS, json={"project_uuid": new_uuid()})).json()
        entry = await running.client.get(entry_path(link))
        assert entry.headers["content-security-policy"].endswith(
            "frame-ancestors https://platform.example 'self'"
        )
        entered = await enter(running.client, link, **{"X-Forwarded-Proto": "https"})
        cookie = portal_cookie(entered)
        assert "SameSite=none" in cookie
        assert "Secure" in cookie
