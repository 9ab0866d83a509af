"""Webhooks owned by a project: scoped subscriptions, immutable owner, listing and matching."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, event_of, ingest, new_uuid
from tests.support.app import RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"
WEBHOOKS = "/api/v1/subscribers/webhooks"


def _locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


async def test_an_owned_webhook_scopes_its_subscriptions_to_its_project(herald: RunningApp) -> None:
    project = new_uuid()
    hook = await create_webhook(
        herald.client,
        project_uuid=project,
        subscriptions=[{"event_type": "*"}, {"event_type": "project:created", "project_uuid": project}],
    )
    assert hook["project_uuid"] == project
    assert hook["subscriptions"] == [
        {"event_type": "*", "project_uuid": project},
        {"event_type": "project:created", "project_uuid": project},
    ]
    unowned = await create_webhook(herald.client)
    assert unowned["project_uuid"] is None
    fetched = (await herald.client.get(f"{SUBSCRIBERS}/{hook['uuid']}")).json()
    assert fetched["project_uuid"] == project


async def test_owned_subscriptions_outside_the_project_are_422(herald: RunningApp) -> None:
    project = new_uuid()
    body = {"name": "owned", "url": "http://127.0.0.1:9/", "project_uuid": project}
    other = {"event_type": "project:created", "project_uuid": new_uuid()}
    response = await herald.client.post(WEBHOOKS, json=body | {"subscriptions": [other]})
    assert _locs(response) == [["body", "subscriptions", 0, "project_uuid"]]
    jupyter = {"event_type": "jupyter:*"}
    response = await herald.client.post(WEBHOOKS, json=body | {"subscriptions": [jupyter]})
    assert _locs(response) == [["body", "subscriptions", 0, "event_type"]]
    assert "without" in response.json()["detail"][0]["msg"]
    job_on_all = {"event_type": "*", "job_uuid": new_uuid()}
    response = await herald.client.post(WEBHOOKS, json=body | {"subscriptions": [job_on_all]})
    assert _locs(response) == [["body", "subscriptions", 0, "job_uuid"]]
    response = await herald.client.post(WEBHOOKS, json=body | {"project_uuid": "not-a-uuid"})
    assert _locs(response) == [["body", "project_uuid"]]
    listed = (await herald.client.get(SUBSCRIBERS, params={"type": "webhook"})).json()["items"]
    assert listed == []


async def test_the_owner_cannot_change(herald: RunningApp) -> None:
    project = new_uuid()
    hook = await create_webhook(herald.client, project_uuid=project)
    url = f"{SUBSCRIBERS}/{hook['uuid']}"
    assert _locs(await herald.client.patch(url, json={"project_uuid": new_uuid()})) == [
        ["body", "project_uuid"]
    ]
    assert _locs(await herald.client.patch(url, json={"project_uuid": None})) == [["body", "project_uuid"]]
    same = await herald.client.patch(url, json={"project_uuid": project, "name": "renamed"})
    assert same.status_code == 200, same.text
    assert same.json()["name"] == "renamed"
    unowned = await create_webhook(herald.client)
    unowned_url = f"{SUBSCRIBERS}/{unowned['uuid']}"
    assert _locs(await herald.client.patch(unowned_url, json={"project_uuid": project})) == [
        ["body", "project_uuid"]
    ]
    assert (await herald.client.patch(unowned_url, json={"project_uuid": None})).status_code == 200
    assert (await herald.client.get(unowned_url)).json()["project_uuid"] is None


async def test_patched_subscriptions_follow_the_owner(herald: RunningApp) -> None:
    project = new_uuid()
    hook = await create_webhook(herald.client, project_uuid=project, subscriptions=[])
    url = f"{SUBSCRIBERS}/{hook['uuid']}"
    patched = await herald.client.patch(url, json={"subscriptions": [{"event_type": "project:*"}]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["subscriptions"] == [{"event_type": "project:*", "project_uuid": project}]
    refused = await herald.client.patch(
        url, json={"subscriptions": [{"event_type": "jupyter:image-build:*"}]}
    )
    assert _locs(refused) == [["body", "subscriptions", 0, "event_type"]]
    assert (await herald.client.get(url)).json()["subscriptions"][0]["event_type"] == "project:*"


async def test_the_list_filters_by_owner(herald: RunningApp) -> None:
    project, other = new_uuid(), new_uuid()
    first = await create_webhook(herald.client, project_uuid=project, name="a")
    second = await create_webhook(herald.client, project_uuid=project, name="b")
    await create_webhook(herald.client, project_uuid=other)
    await create_webhook(herald.client)
    listed = (await herald.client.get(SUBSCRIBERS, params={"project_uuid": project})).json()
    assert [item["uuid"] for item in listed["items"]] == [second["uuid"], first["uuid"]]
    page = (await herald.client.get(SUBSCRIBERS, params={"project_uuid": project, "limit": 1})).json()
    assert [item["uuid"] for item in page["items"]] == [second["uuid"]]
    rest = await herald.client.get(
        SUBSCRIBERS, params={"project_uuid": project, "cursor": page["next_cursor"]}
    )
    assert [item["uuid"] for item in rest.json()["items"]] == [first["uuid"]]
    assert _locs(await herald.client.get(SUBSCRIBERS, params={"project_uuid": "x"})) == [
        ["query", "project_uuid"]
    ]


async def test_an_owned_webhook_receives_only_its_projects_events(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    project, other = new_uuid(), new_uuid()
    owned = await create_webhook(herald.client, project_uuid=project)
    everything = await create_webhook(herald.client)
    mine = await ingest(herald.client, event_of("project:created", project=project))
    theirs = await ingest(herald.client, event_of("project:created", project=other))
    jupyter = await ingest(herald.client, "jupyter:image-build:created")
    assert [mine["deliveries"], theirs["deliveries"], jupyter["deliveries"]] == [2, 1, 1]
    rows = await db.fetch("SELECT event_uuid::text, subscriber_uuid::text FROM deliveries")
    owned_events = {row["event_uuid"] for row in rows if row["subscriber_uuid"] == owned["uuid"]}
    assert owned_events == {mine["uuid"]}
    everything_events = {row["event_uuid"] for row in rows if row["subscriber_uuid"] == everything["uuid"]}
    assert everything_events == {mine["uuid"], theirs["uuid"], jupyter["uuid"]}


async def test_subscribed_to_lists_an_owned_webhook_only_for_its_project(herald: RunningApp) -> None:
    project = new_uuid()
    owned = await create_webhook(herald.client, project_uuid=project, name="owned")
    unowned = await create_webhook(herald.client, name="all")
    url = f"{SUBSCRIBERS}/subscribed-to/project:created"

    async def listed(**params: str) -> list[str]:
        response = await herald.client.get(url, params=params)
        assert response.status_code == 200, response.text
        return [item["uuid"] for item in response.json()["items"]]

    assert await listed(project_uuid=project) == [unowned["uuid"], owned["uuid"]]
    assert await listed(project_uuid=new_uuid()) == [unowned["uuid"]]
    assert await listed() == [unowned["uuid"]]
