"""Ingest of custom event types: data checked against the schema, batches, scopes, replays,
schema changes, and the schema cache of two app instances sharing one database."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.support.api import create_webhook, event_of, new_uuid
from tests.support.app import AppFactory, RunningApp
from tests.support.custom_types import EVENT_TYPES, create_type, custom_event, order_data

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

EVENTS = "/api/v1/events"
BATCH = "/api/v1/events/batch"


async def test_a_valid_event_is_recorded_with_its_payload(herald: RunningApp) -> None:
    await create_type(herald.client)
    project = new_uuid()
    body = custom_event(project=project) | {"timestamp": "2026-01-02T04:05:06+01:00"}
    response = await herald.client.post(EVENTS, json=body)
    assert response.status_code == 202, response.text
    assert response.json()["type"] == "order.placed"
    event = (await herald.client.get(f"{EVENTS}/{body['uuid']}")).json()["event"]
    assert event == {
        "uuid": body["uuid"],
        "type": "order.placed",
        "timestamp": "2026-01-02T03:05:06Z",
        "project_uuid": project,
        "data": order_data(),
    }


async def test_project_uuid_is_left_out_of_the_payload_when_not_given(herald: RunningApp) -> None:
    await create_type(herald.client)
    body = custom_event()
    await herald.client.post(EVENTS, json=body)
    event = (await herald.client.get(f"{EVENTS}/{body['uuid']}")).json()["event"]
    assert set(event) == {"uuid", "type", "timestamp", "data"}


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"amount": "12"}, ["body", "data", "amount"]),
        ({"amount": -1}, ["body", "data", "amount"]),
        ({"currency": "JPY"}, ["body", "data", "currency"]),
        ({"customer": {"id": 7}}, ["body", "data", "customer", "id"]),
        ({"customer": {"tier": "gold"}}, ["body", "data", "customer", "id"]),
        ({"tags": ["a", 1]}, ["body", "data", "tags", 1]),
        ({"colour": "blue"}, ["body", "data", "colour"]),
    ],
)
async def test_invalid_data_is_refused_naming_the_failing_path(
    herald: RunningApp, db: asyncpg.Connection, data: dict[str, Any], loc: list[Any]
) -> None:
    await create_type(herald.client)
    body = custom_event()
    body["data"] |= data
    response = await herald.client.post(EVENTS, json=body)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [loc]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_a_missing_required_field_is_named(herald: RunningApp) -> None:
    await create_type(herald.client)
    body = custom_event()
    del body["data"]["order_id"]
    [error] = (await herald.client.post(EVENTS, json=body)).json()["detail"]
    assert error["loc"] == ["body", "data", "order_id"]
    assert error["type"] == "missing"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"data": None}, ["body", "data"]),
        ({"data": [1]}, ["body", "data"]),
        ({"project_uuid": "nope"}, ["body", "project_uuid"]),
        ({"project": {"uuid": new_uuid(), "name": "x"}}, ["body", "project"]),
        ({"timestamp": "2026-01-02T03:04:05"}, ["body", "timestamp"]),
    ],
)
async def test_a_bad_envelope_is_refused_naming_the_field(
    herald: RunningApp, change: dict[str, Any], loc: list[str]
) -> None:
    await create_type(herald.client)
    response = await herald.client.post(EVENTS, json=custom_event() | change)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [loc]


async def test_an_event_of_no_type_is_refused_naming_the_type(herald: RunningApp) -> None:
    response = await herald.client.post(EVENTS, json=custom_event("no.such.type"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "type"]
    assert "no.such.type" in error["msg"]


async def test_a_batch_with_one_bad_event_names_its_index_and_records_nothing(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_type(herald.client)
    events = [custom_event() for _ in range(3)] + [event_of("project:created")]
    events[2]["data"]["amount"] = "lots"
    response = await herald.client.post(BATCH, json={"events": events})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "events", 2, "data", "amount"]]
    events[1]["type"] = "not.defined"
    locs = [e["loc"] for e in (await herald.client.post(BATCH, json={"events": events})).json()["detail"]]
    assert locs == [["body", "events", 1, "type"], ["body", "events", 2, "data", "amount"]]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("size", [3, 120])  # the second is written with COPY
async def test_batches_mix_custom_and_catalog_events(
    herald: RunningApp, db: asyncpg.Connection, size: int
) -> None:
    await create_type(herald.client)
    await create_webhook(herald.client, subscriptions=[{"event_type": "order.placed"}])
    events = [custom_event() if i % 2 else event_of("project:created") for i in range(size)]
    response = await herald.client.post(BATCH, json={"events": events})
    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert [item["type"] for item in items] == [event["type"] for event in events]
    assert [item["deliveries"] for item in items] == [i % 2 for i in range(size)]
    assert await db.fetchval("SELECT count(*) FROM events WHERE kind = 'custom'") == size // 2


async def test_replays_are_idempotent_and_a_different_data_is_a_conflict(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_type(herald.client)
    await create_webhook(herald.client, subscriptions=[{"event_type": "order.placed"}])
    body = custom_event()
    first = await herald.client.post(EVENTS, json=body)
    again = await herald.client.post(EVENTS, json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    in_batch = await herald.client.post(BATCH, json={"events": [body, custom_event()]})
    assert in_batch.status_code == 202
    assert in_batch.json()["items"][0]["replayed"] is True
    changed = body | {"data": order_data(amount=99)}
    assert (await herald.client.post(EVENTS, json=changed)).status_code == 409
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE event_uuid = $1", body["uuid"]) == 1


async def test_a_project_scope_selects_the_events_of_that_project(herald: RunningApp) -> None:
    await create_type(herald.client)
    project = new_uuid()
    scoped = [{"event_type": "order.placed", "project_uuid": project}]
    await create_webhook(herald.client, subscriptions=scoped)
    await create_webhook(herald.client, subscriptions=[{"event_type": "order.*", "project_uuid": project}])
    await create_webhook(herald.client, project_uuid=project, subscriptions=[{"event_type": "*"}])
    mine = await herald.client.post(EVENTS, json=custom_event(project=project))
    other = await herald.client.post(EVENTS, json=custom_event(project=new_uuid()))
    none = await herald.client.post(EVENTS, json=custom_event())
    assert [r.json()["deliveries"] for r in (mine, other, none)] == [3, 0, 0]
    feed = (await herald.client.get(EVENTS, params={"project_uuid": project})).json()["items"]
    assert [item["uuid"] for item in feed] == [mine.json()["uuid"]]
    listed = await herald.client.get(f"/api/v1/subscribers/subscribed-to/order.placed?project_uuid={project}")
    assert len(listed.json()["items"]) == 3


async def test_subscriptions_to_custom_types_follow_the_catalog_rules(herald: RunningApp) -> None:
    hooks = "/api/v1/subscribers/webhooks"

    async def refused(subscription: dict[str, Any]) -> list[Any]:
        body = {"name": "h", "url": "http://127.0.0.1:9/h", "subscriptions": [subscription]}
        response = await herald.client.post(hooks, json=body)
        assert response.status_code == 422
        return [e["loc"] for e in response.json()["detail"]]

    assert await refused({"event_type": "order.placed"}) == [["body", "subscriptions", 0, "event_type"]]
    assert await refused({"event_type": "order.*"}) == [["body", "subscriptions", 0, "event_type"]]
    await create_type(herald.client)
    await create_webhook(herald.client, subscriptions=[{"event_type": "order.*"}])
    job_scope = {"event_type": "order.placed", "project_uuid": new_uuid(), "job_uuid": new_uuid()}
    assert await refused(job_scope) == [["body", "subscriptions", 0, "job_uuid"]]
    assert (await herald.client.get("/api/v1/subscribers/subscribed-to/no.such")).status_code == 422


async def test_a_deleted_types_subscriptions_stay_and_match_again_when_it_returns(herald: RunningApp) -> None:
    await create_type(herald.client)
    hook = await create_webhook(herald.client, subscriptions=[{"event_type": "order.placed"}])
    await herald.client.delete(f"{EVENT_TYPES}/order.placed")
    kept = (await herald.client.get(f"/api/v1/subscribers/{hook['uuid']}")).json()["subscriptions"]
    assert [s["event_type"] for s in kept] == ["order.placed"]
    await create_type(herald.client)
    assert (await herald.client.post(EVENTS, json=custom_event())).json()["deliveries"] == 1


async def test_a_schema_change_applies_to_later_events_only(herald: RunningApp) -> None:
    await create_type(herald.client)
    before = custom_event()
    assert (await herald.client.post(EVENTS, json=before)).status_code == 202
    stricter = {
        "type": "object",
        "required": ["order_id", "refund"],
        "properties": {"refund": {"type": "boolean"}},
    }
    assert (
        await herald.client.patch(f"{EVENT_TYPES}/order.placed", json={"schema": stricter})
    ).status_code == 200
    refused = await herald.client.post(EVENTS, json=custom_event())
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "data", "refund"]]
    assert (await herald.client.post(EVENTS, json=custom_event(refund=True))).status_code == 202
    # The event recorded before the change is untouched, and replaying it is still a replay.
    assert (await herald.client.post(EVENTS, json=before)).status_code == 200


async def test_two_instances_on_one_database_see_a_patched_schema(app_factory: AppFactory) -> None:
    async with app_factory() as first, app_factory() as second:
        await create_type(first.client)
        # Both compile and cache version 1.
        for app in (first, second):
            assert (await app.client.post(EVENTS, json=custom_event())).status_code == 202
        narrower = {"type": "object", "properties": {"amount": {"maximum": 10}}}
        patched = await first.client.patch(f"{EVENT_TYPES}/order.placed", json={"schema": narrower})
        assert patched.status_code == 200
        for app in (second, first):
            response = await app.client.post(EVENTS, json=custom_event())
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["loc"] == ["body", "data", "amount"]
        assert (await first.client.delete(f"{EVENT_TYPES}/order.placed")).status_code == 204
        gone = await second.client.post(EVENTS, json=custom_event(amount=1))
        assert gone.json()["detail"][0]["loc"] == ["body", "type"]


async def test_a_body_of_no_type_is_answered_with_its_type_whatever_else_it_lacks(herald: RunningApp) -> None:
    single = await herald.client.post(EVENTS, json={"type": "no.such", "uuid": "bad", "project": {}})
    assert single.status_code == 422
    assert sorted(e["loc"] for e in single.json()["detail"]) == [["body", "type"], ["body", "uuid"]]
    await create_type(herald.client)
    events = [{"type": "order.placed"}, {"type": "no.such"}, custom_event()]
    batch = await herald.client.post(BATCH, json={"events": events})
    locs = [e["loc"] for e in batch.json()["detail"]]
    assert locs == [["body", "events", 0, "data"], ["body", "events", 1, "type"]]
