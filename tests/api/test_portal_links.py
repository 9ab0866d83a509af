"""``/api/v1/portal-links``: making, listing and revoking one-time links to a project's portal."""

from __future__ import annotations

import hashlib
from datetime import datetime

import asyncpg
import pytest

from tests.support.api import new_uuid
from tests.support.app import AppFactory, RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

LINKS = "/api/v1/portal-links"


async def test_a_link_is_made_with_an_absolute_url_and_only_its_hash_is_kept(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    project = new_uuid()
    response = await herald.client.post(LINKS, json={"project_uuid": project})
    assert response.status_code == 201, response.text
    link = response.json()
    assert link["project_uuid"] == project
    assert link["read_only"] is False
    lifetime = datetime.fromisoformat(link["expires_at"]) - datetime.fromisoformat(link["created_at"])
    assert lifetime.total_seconds() == 3600
    assert link["url"].startswith("http://herald.test/portal/enter/")
    token = link["url"].rsplit("/", 1)[1]
    [row] = await db.fetch("SELECT uuid::text, token_hash FROM portal_links")
    assert row["uuid"] == link["uuid"]
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    other_host = await herald.client.post(
        LINKS, json={"project_uuid": project, "read_only": True}, headers={"Host": "portal.example:8443"}
    )
    assert other_host.json()["url"].startswith("http://portal.example:8443/portal/enter/")
    assert other_host.json()["read_only"] is True


async def test_bad_link_requests_are_422_naming_the_field(herald: RunningApp) -> None:
    cases = [
        ({}, ["body", "project_uuid"]),
        ({"project_uuid": "nope"}, ["body", "project_uuid"]),
        ({"project_uuid": new_uuid(), "expires_in_seconds": 299}, ["body", "expires_in_seconds"]),
        ({"project_uuid": new_uuid(), "expires_in_seconds": 604_801}, ["body", "expires_in_seconds"]),
        ({"project_uuid": new_uuid(), "read_only": "maybe"}, ["body", "read_only"]),
        ({"project_uuid": new_uuid(), "token": "x"}, ["body", "token"]),
    ]
    for body, loc in cases:
        response = await herald.client.post(LINKS, json=body)
        assert response.status_code == 422, (body, response.text)
        assert [error["loc"] for error in response.json()["detail"]] == [loc]
    assert (await herald.client.get(LINKS)).json()["items"] == []


async def test_the_list_pages_newest_first_filters_by_project_and_never_shows_a_url(
    herald: RunningApp,
) -> None:
    project, other = new_uuid(), new_uuid()
    made = [(await herald.client.post(LINKS, json={"project_uuid": project})).json() for _ in range(3)]
    await herald.client.post(LINKS, json={"project_uuid": other})
    first = (await herald.client.get(LINKS, params={"project_uuid": project, "limit": 2})).json()
    rest = await herald.client.get(LINKS, params={"project_uuid": project, "cursor": first["next_cursor"]})
    listed = first["items"] + rest.json()["items"]
    assert [item["uuid"] for item in listed] == [link["uuid"] for link in reversed(made)]
    assert all("url" not in item and item["used_at"] is None for item in listed)
    assert len((await herald.client.get(LINKS)).json()["items"]) == 4
    bad = await herald.client.get(LINKS, params={"cursor": "garbage"})
    assert bad.status_code == 422


async def test_revoking_answers_204_and_an_unknown_link_404(herald: RunningApp) -> None:
    link = (await herald.client.post(LINKS, json={"project_uuid": new_uuid()})).json()
    assert (await herald.client.delete(f"{LINKS}/{link['uuid']}")).status_code == 204
    assert (await herald.client.delete(f"{LINKS}/{link['uuid']}")).status_code == 204
    [listed] = (await herald.client.get(LINKS)).json()["items"]
    assert listed["revoked_at"] is not None
    assert (await herald.client.delete(f"{LINKS}/{new_uuid()}")).status_code == 404
    assert (await herald.client.delete(f"{LINKS}/not-a-uuid")).status_code == 422


async def test_portal_links_need_an_admin_key(app_factory: AppFactory) -> None:
    async with app_factory(api_keys="admin:links-admin,ingest:links-ingest") as running:
        body = {"project_uuid": new_uuid()}
        assert (await running.client.post(LINKS, json=body)).status_code == 401
        ingest = {"Authorization": "Bearer links-ingest"}
        assert (await running.client.post(LINKS, json=body, headers=ingest)).status_code == 403
        admin = {"Authorization": "Bearer links-admin"}
        assert (await running.client.post(LINKS, json=body, headers=admin)).status_code == 201


async def test_a_link_preview_leaves_the_link_unused_and_only_its_button_uses_it(herald: RunningApp) -> None:
    link = (await herald.client.post(LINKS, json={"project_uuid": new_uuid()})).json()
    entry = link["url"].removeprefix("http://herald.test")
    preview = await herald.client.get(entry, headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})
    assert preview.status_code == 200
    assert "herald_portal" not in herald.client.cookies
    [listed] = (await herald.client.get(LINKS)).json()["items"]
    assert listed["used_at"] is None
    opened = await herald.client.post(entry, headers={"Origin": "http://herald.test"})
    assert opened.status_code == 303
    assert "herald_portal" in herald.client.cookies
    [listed] = (await herald.client.get(LINKS)).json()["items"]
    assert listed["used_at"] is not None
