"""``POST /api/v1/analytics`` (the front-end relay) and ``GET /api/v1/analytics/events``."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from service.catalog import CATALOG
from service.core.analytics import CLIENT_EVENTS, Event
from tests.support.app import AppFactory, RunningApp
from tests.support.posthog_receiver import TELEMETRY, running_posthog


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"level": value}
    return value


INVALID_BODIES: list[tuple[str, Any, list[str]]] = [
    ("unknown event", {"event": "project:exploded"}, ["body", "event"]),
    ("catalog event", {"event": "project:created"}, ["body", "event"]),
    ("service event", {"event": "heartbeat-trigger"}, ["body", "event"]),
    ("event not a string", {"event": 42}, ["body", "event"]),
    ("missing event", {"properties": {}}, ["body", "event"]),
    ("properties not an object", {"event": "view:loaded", "properties": ["a"]}, ["body", "properties"]),
    ("properties a string", {"event": "view:loaded", "properties": "x"}, ["body", "properties"]),
    ("oversize", {"event": "view:loaded", "properties": {"blob": "x" * 8200}}, ["body", "properties"]),
    ("too deep", {"event": "view:loaded", "properties": _nested(11)}, ["body", "properties"]),
    (
        "too deep in a list",
        {"event": "view:loaded", "properties": {"a": [[[[[[[[[[[1]]]]]]]]]]]}},
        ["body", "properties"],
    ),
    ("NUL character", {"event": "view:loaded", "properties": {"a": "x\x00y"}}, ["body", "properties"]),
    ("unknown key", {"event": "view:loaded", "extra": 1}, ["body", "extra"]),
    ("not an object", ["view:loaded"], ["body"]),
]


@pytest.mark.parametrize(("case", "body", "loc"), INVALID_BODIES, ids=[c[0] for c in INVALID_BODIES])
async def test_invalid_relay_bodies_are_422_naming_the_field(
    app_factory: AppFactory, db: asyncpg.Connection, case: str, body: Any, loc: list[str]
) -> None:
    async with app_factory(telemetry_url="http://127.0.0.1:9") as herald:
        response = await herald.client.post("/api/v1/analytics", json=body)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_malformed_json_is_422(herald: RunningApp) -> None:
    response = await herald.client.post(
        "/api/v1/analytics", content=b'{"event": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_a_catalog_name_is_refused_with_a_reason(herald: RunningApp) -> None:
    response = await herald.client.post("/api/v1/analytics", json={"event": "project:created"})
    assert response.status_code == 422
    assert "catalog events are sent by ingest" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "properties", [None, {}, _nested(10), {"blob": "x" * 8000}, {"a": [1, 2.5, True, None, "text"]}]
)
async def test_valid_properties_are_queued(
    app_factory: AppFactory, db: asyncpg.Connection, properties: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {"event": "view:loaded"}
    if properties is not None:
        body["properties"] = properties
    async with app_factory(telemetry_url="http://127.0.0.1:9") as herald:
        response = await herald.client.post("/api/v1/analytics", json=body)
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": True}
    [row] = await db.fetch(
        "SELECT event_type, subscriber_kind, CAST(payload AS text) AS payload FROM deliveries"
    )
    assert row["event_type"] == "view:loaded"
    assert row["subscriber_kind"] == "analytics"
    assert json.loads(row["payload"]) == {"event_properties": properties or {}, "derived_properties": {}}


async def test_relayed_events_reach_the_backend_but_not_the_feed(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with (
        running_posthog() as posthog,
        app_factory(**TELEMETRY, telemetry_url=posthog.url) as herald,
    ):
        for event in sorted(CLIENT_EVENTS):
            response = await herald.client.post(
                "/api/v1/analytics", json={"event": event.value, "properties": {"view": "jobs"}}
            )
            assert response.status_code == 202
        await posthog.wait_for_events(len(CLIENT_EVENTS))
        feed = await herald.client.get("/api/v1/events")
    assert feed.json()["items"] == []
    assert {item["event"] for item in posthog.events} == {e.value for e in CLIENT_EVENTS}
    for item in posthog.events:
        assert item["properties"]["event_properties"] == {"view": "jobs"}
        assert item["properties"]["derived_properties"] == {}


async def test_analytics_event_list_is_the_whole_enumeration(herald: RunningApp) -> None:
    response = await herald.client.get("/api/v1/analytics/events")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    names = {item["name"]: item["source"] for item in body["items"]}
    assert set(names) == {e.value for e in Event}
    assert {n for n, source in names.items() if source == "catalog"} == set(CATALOG)
    assert {n for n, source in names.items() if source == "client"} == {e.value for e in CLIENT_EVENTS}
    assert names["heartbeat-trigger"] == "service"


async def test_ingest_keys_may_relay_and_list(app_factory: AppFactory) -> None:
    async with app_factory(api_keys="admin:adm-key,ingest:ing-key") as herald:
        ingest = {"Authorization": "Bearer ing-key"}
        relayed = await herald.client.post("/api/v1/analytics", json={"event": "debug-ping"}, headers=ingest)
        assert relayed.status_code == 202
        listed = await herald.client.get("/api/v1/analytics/events", headers=ingest)
        assert listed.status_code == 200
        anonymous = await herald.client.post("/api/v1/analytics", json={"event": "debug-ping"})
        assert anonymous.status_code == 401


async def test_relay_is_documented_in_the_openapi_schema(herald: RunningApp) -> None:
    schema = (await herald.client.get("/openapi.json")).json()
    post = schema["paths"]["/api/v1/analytics"]["post"]
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["properties"]["event"]["enum"]) == {e.value for e in CLIENT_EVENTS}
    assert "202" in post["responses"]
    assert "/api/v1/analytics/events" in schema["paths"]
