"""Listing subscribers, the analytics subscriber's rules, and ``subscribed-to``."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, new_uuid
from tests.support.app import AppFactory, RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"
TELEMETRY_URL = "http://127.0.0.1:9"


async def _all_pages(herald: RunningApp, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await herald.client.get(SUBSCRIBERS, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_list_is_newest_first_with_cursor_pages(herald: RunningApp) -> None:
    created = [
        (await create_webhook(herald.client, subscriptions=[], name=f"hook {i}"))["uuid"] for i in range(5)
    ]
    pages = await _all_pages(herald, limit=2)
    assert [len(page) for page in pages] == [2, 2, 2]
    listed = [item for page in pages for item in page]
    assert [item["uuid"] for item in listed[:5]] == created[::-1]
    assert listed[5]["type"] == "analytics"


async def test_list_pages_are_stable_when_creation_times_tie(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    for i in range(7):
        await create_webhook(herald.client, subscriptions=[], name=f"hook {i}")
    await db.execute("UPDATE subscribers SET created_at = '2026-01-01T00:00:00Z' WHERE kind = 'webhook'")
    pages = await _all_pages(herald, limit=3, type="webhook")
    uuids = [item["uuid"] for page in pages for item in page]
    assert len(uuids) == len(set(uuids)) == 7
    assert uuids == sorted(uuids, reverse=True)


async def test_list_filters_by_type(herald: RunningApp) -> None:
    hook = await create_webhook(herald.client, subscriptions=[])
    webhooks = (await herald.client.get(SUBSCRIBERS, params={"type": "webhook"})).json()
    assert [item["uuid"] for item in webhooks["items"]] == [hook["uuid"]]
    assert webhooks["next_cursor"] is None
    analytics = (await herald.client.get(SUBSCRIBERS, params={"type": "analytics"})).json()["items"]
    assert [item["type"] for item in analytics] == ["analytics"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"type": "email"}, ["query", "type"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 501}, ["query", "limit"]),
        ({"cursor": "!!!"}, ["query", "cursor"]),
        ({"cursor": "czEyMw"}, ["query", "cursor"]),  # a cursor of another list
    ],
)
async def test_bad_list_parameters_are_422(
    herald: RunningApp, params: dict[str, Any], loc: list[str]
) -> None:
    response = await herald.client.get(SUBSCRIBERS, params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_the_analytics_subscriber_is_listed_read_only_and_off_without_telemetry(
    herald: RunningApp,
) -> None:
    [analytics] = (await herald.client.get(SUBSCRIBERS, params={"type": "analytics"})).json()["items"]
    assert analytics["name"] == "analytics"
    assert analytics["url"] is None
    assert analytics["subscriptions"] == [{"event_type": "*"}]
    assert analytics["enabled"] is False
    assert analytics["disabled_reason"]
    assert "secret" not in analytics
    path = f"{SUBSCRIBERS}/{analytics['uuid']}"
    assert (await herald.client.get(path)).json() == analytics
    for method, suffix, body in (
        ("PATCH", "", {"name": "mine"}),
        ("PATCH", "", {"enabled": True}),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", None),
    ):
        response = await herald.client.request(method, f"{path}{suffix}", json=body)
        assert response.status_code == 409, (method, suffix)
        assert "analytics" in response.json()["detail"]
    assert (await herald.client.get(path)).json() == analytics


async def test_the_analytics_subscriber_is_enabled_while_telemetry_is_on(app_factory: AppFactory) -> None:
    async with app_factory(telemetry_url=TELEMETRY_URL) as running:
        [analytics] = (await running.client.get(SUBSCRIBERS, params={"type": "analytics"})).json()["items"]
        assert analytics["enabled"] is True
        assert analytics["disabled_reason"] is None
    async with app_factory(telemetry_url=TELEMETRY_URL, telemetry_disabled=True) as running:
        [analytics] = (await running.client.get(SUBSCRIBERS, params={"type": "analytics"})).json()["items"]
        assert analytics["enabled"] is False


async def _subscribed_to(herald: RunningApp, event_type: str, **params: str) -> list[str]:
    response = await herald.client.get(f"{SUBSCRIBERS}/subscribed-to/{event_type}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert all("secret" not in item for item in body["items"])
    return sorted(item["name"] for item in body["items"])


async def test_subscribed_to_lists_enabled_webhooks_whose_scope_the_query_gives(herald: RunningApp) -> None:
    project, other_project, job, other_job = new_uuid(), new_uuid(), new_uuid(), new_uuid()
    client = herald.client
    await create_webhook(client, subscriptions=[{"event_type": "*"}], name="everything")
    await create_webhook(client, subscriptions=[{"event_type": "*:failed"}], name="failures")
    await create_webhook(
        client, subscriptions=[{"event_type": "project:*", "project_uuid": project}], name="project"
    )
    await create_webhook(
        client,
        subscriptions=[{"event_type": "project:one-off-job:*", "project_uuid": project, "job_uuid": job}],
        name="job",
    )
    await create_webhook(client, subscriptions=[{"event_type": "*"}], name="disabled", enabled=False)

    failed = "project:one-off-job:failed"
    assert await _subscribed_to(herald, failed) == ["everything", "failures"]
    assert await _subscribed_to(herald, failed, project_uuid=other_project) == ["everything", "failures"]
    assert await _subscribed_to(herald, failed, project_uuid=project) == ["everything", "failures", "project"]
    assert await _subscribed_to(herald, failed, project_uuid=project, job_uuid=job) == [
        "everything",
        "failures",
        "job",
        "project",
    ]
    # The old notification service's bug: a job-scoped subscription answered for every job of its project.
    assert await _subscribed_to(herald, failed, project_uuid=project, job_uuid=other_job) == [
        "everything",
        "failures",
        "project",
    ]
    assert await _subscribed_to(herald, "jupyter:image-build:succeeded") == ["everything"]
    assert await _subscribed_to(herald, "project:created", project_uuid=project) == ["everything", "project"]


async def test_subscribed_to_an_operational_type_lists_only_herald_patterns(herald: RunningApp) -> None:
    project, other_project = new_uuid(), new_uuid()
    client = herald.client
    await create_webhook(client, subscriptions=[{"event_type": "*"}], name="everything")
    await create_webhook(client, subscriptions=[{"event_type": "herald:*"}], name="all-herald")
    await create_webhook(client, subscriptions=[{"event_type": "herald:delivery:*"}], name="deliveries")
    await create_webhook(
        client, subscriptions=[{"event_type": "herald:*", "project_uuid": project}], name="project-scoped"
    )
    owned = [{"event_type": "herald:*"}]
    await create_webhook(client, project_uuid=project, subscriptions=owned, name="owned")

    assert await _subscribed_to(herald, "herald:subscriber:disabled") == ["all-herald"]
    assert await _subscribed_to(herald, "herald:delivery:failing") == ["all-herald", "deliveries"]
    assert await _subscribed_to(herald, "herald:delivery:failing", project_uuid=project) == [
        "all-herald",
        "deliveries",
        "owned",
        "project-scoped",
    ]
    assert await _subscribed_to(herald, "herald:delivery:failed", project_uuid=other_project) == [
        "all-herald",
        "deliveries",
    ]
    # "*" still reaches the catalog types, and a herald: pattern none of them.
    assert await _subscribed_to(herald, "project:created") == ["everything"]


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("project:*", {}, ["path", "event_type"]),
        ("ping", {}, ["path", "event_type"]),
        ("nothing", {}, ["path", "event_type"]),
        ("herald:*", {}, ["path", "event_type"]),
        ("herald:nothing", {}, ["path", "event_type"]),
        ("project:created", {"project_uuid": "nope"}, ["query", "project_uuid"]),
        (
            "project:one-off-job:created",
            {"job_uuid": "a3c4e5f6-1b2d-4e8f-9a0b-7c6d5e4f3a21"},
            ["query", "job_uuid"],
        ),
    ],
)
async def test_subscribed_to_refuses_what_no_event_could_be(
    herald: RunningApp, path: str, params: dict[str, str], loc: list[str]
) -> None:
    response = await herald.client.get(f"{SUBSCRIBERS}/subscribed-to/{path}", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_fixed_paths_win_over_uuid_paths(herald: RunningApp) -> None:
    # "webhooks" and "subscribed-to" are never taken for a subscriber uuid.
    response = await herald.client.get(f"{SUBSCRIBERS}/subscribed-to/project:created")
    assert response.status_code == 200
    created = await herald.client.post(
        f"{SUBSCRIBERS}/webhooks", json={"name": "n", "url": "https://example.com"}
    )
    assert created.status_code == 201
