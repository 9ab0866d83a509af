"""Custom event types through the API: create, list, change, delete, and every refusal."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from service.catalog import CATALOG, OPERATIONAL
from tests.support.app import AppFactory, RunningApp
from tests.support.custom_types import EVENT_TYPES, ORDER_SCHEMA, create_type, custom_event

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app


async def test_a_created_type_is_answered_and_listed_after_the_built_in_ones(herald: RunningApp) -> None:
    created = await create_type(herald.client)
    assert created == {
        "name": "order.placed",
        "description": "An order was placed.",
        "optional_filters": [["project_uuid"]],
        "operational": False,
        "custom": True,
        "schema": ORDER_SCHEMA,
    }
    listing = (await herald.client.get(EVENT_TYPES)).json()
    items = listing["items"]
    assert len(items) == len(CATALOG) + len(OPERATIONAL) + 1
    assert items[-1] == created
    assert all(item["custom"] is False and item["schema"] is None for item in items[:-1])
    assert listing["next_cursor"] is None


async def test_description_defaults_to_empty(herald: RunningApp) -> None:
    response = await herald.client.post(EVENT_TYPES, json={"name": "a.b", "schema": {"type": "object"}})
    assert response.status_code == 201
    assert response.json()["description"] == ""


async def test_an_existing_name_is_a_conflict(herald: RunningApp) -> None:
    await create_type(herald.client)
    response = await herald.client.post(EVENT_TYPES, json={"name": "order.placed", "schema": {}})
    assert response.status_code == 409


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "x" * 101,
        "Order.Placed",
        "order placed",
        "order/placed",
        "ping",
        "project:custom",
        "project:created",
        "jupyter:thing",
        "herald:mine",
        "ordér",
    ],
)
async def test_a_bad_name_is_refused_naming_it(herald: RunningApp, name: str) -> None:
    response = await herald.client.post(EVENT_TYPES, json={"name": name, "schema": {}})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "name"]]


@pytest.mark.parametrize(
    ("schema", "loc"),
    [
        ({"type": "nope"}, ["body", "schema", "type"]),
        ({"properties": {"a": {"minLength": -1}}}, ["body", "schema", "properties", "a", "minLength"]),
        ({"pattern": "("}, ["body", "schema", "pattern"]),
        ({"$ref": "https://example.com/schema.json"}, ["body", "schema"]),
        ({"$ref": "file:///etc/passwd"}, ["body", "schema"]),
        ({"$ref": "#/$defs/missing"}, ["body", "schema"]),
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, ["body", "schema", "$schema"]),
        ({"description": "x" * (64 * 1024)}, ["body", "schema"]),
        ({"description": "a\u0000b"}, ["body", "schema", "description"]),
    ],
)
async def test_an_invalid_schema_is_refused_naming_where(
    herald: RunningApp, schema: dict[str, Any], loc: list[str]
) -> None:
    response = await herald.client.post(EVENT_TYPES, json={"name": "order.placed", "schema": schema})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert (await herald.client.get(EVENT_TYPES)).json()["items"][-1]["custom"] is False


@pytest.mark.parametrize(
    "body",
    [{"name": "order.placed"}, {"name": "order.placed", "schema": []}, {"name": "order.placed", "schema": 1}],
)
async def test_a_missing_or_non_object_schema_is_refused(herald: RunningApp, body: dict[str, Any]) -> None:
    response = await herald.client.post(EVENT_TYPES, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "schema"]


async def test_a_local_ref_is_accepted(herald: RunningApp) -> None:
    schema = {"$defs": {"id": {"type": "string"}}, "properties": {"id": {"$ref": "#/$defs/id"}}}
    await create_type(herald.client, "with.refs", schema)


async def test_patch_changes_description_and_schema(herald: RunningApp) -> None:
    await create_type(herald.client)
    response = await herald.client.patch(
        f"{EVENT_TYPES}/order.placed", json={"description": "Placed.", "schema": {"type": "object"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["schema"] == {"type": "object"}
    assert response.json()["description"] == "Placed."
    only_description = await herald.client.patch(f"{EVENT_TYPES}/order.placed", json={"description": "P"})
    assert only_description.json()["schema"] == {"type": "object"}


async def test_patch_refuses_an_invalid_schema_and_keeps_the_old_one(herald: RunningApp) -> None:
    await create_type(herald.client)
    response = await herald.client.patch(f"{EVENT_TYPES}/order.placed", json={"schema": {"type": 5}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", "schema", "type"]
    assert (await herald.client.get(EVENT_TYPES)).json()["items"][-1]["schema"] == ORDER_SCHEMA


async def test_patch_refuses_unknown_fields(herald: RunningApp) -> None:
    await create_type(herald.client)
    response = await herald.client.patch(f"{EVENT_TYPES}/order.placed", json={"name": "other.name"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    "name", ["project:created", "jupyter:image-build:failed", "herald:delivery:failed", "ping"]
)
async def test_built_in_types_cannot_be_changed_or_deleted(herald: RunningApp, name: str) -> None:
    patched = await herald.client.patch(f"{EVENT_TYPES}/{name}", json={"description": "mine"})
    assert patched.status_code == 409
    assert (await herald.client.delete(f"{EVENT_TYPES}/{name}")).status_code == 409


async def test_unknown_custom_types_are_not_found(herald: RunningApp) -> None:
    assert (await herald.client.patch(f"{EVENT_TYPES}/no.such", json={})).status_code == 404
    assert (await herald.client.delete(f"{EVENT_TYPES}/no.such")).status_code == 404


async def test_delete_keeps_events_refuses_new_ones_and_the_name_can_be_used_again(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    await create_type(herald.client)
    body = custom_event()
    assert (await herald.client.post("/api/v1/events", json=body)).status_code == 202
    assert (await herald.client.delete(f"{EVENT_TYPES}/order.placed")).status_code == 204
    assert (await herald.client.delete(f"{EVENT_TYPES}/order.placed")).status_code == 404
    assert (await herald.client.get(EVENT_TYPES)).json()["items"][-1]["custom"] is False
    # The recorded event stays, with its payload.
    kept = await herald.client.get(f"/api/v1/events/{body['uuid']}")
    assert kept.status_code == 200
    assert kept.json()["event"]["data"] == body["data"]
    refused = await herald.client.post("/api/v1/events", json=custom_event())
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "type"]
    # A retry of the event recorded before the type went is still answered as a replay.
    assert (await herald.client.post("/api/v1/events", json=body)).status_code == 200
    await create_type(herald.client, schema={"type": "object"})
    assert (await herald.client.post("/api/v1/events", json=custom_event())).status_code == 202
    assert await db.fetchval("SELECT count(*) FROM events WHERE type = 'order.placed'") == 2


async def test_ingest_keys_may_list_but_not_create(app_factory: AppFactory) -> None:
    async with app_factory(api_keys="admin:a-key,ingest:i-key") as herald:
        ingest_key = {"Authorization": "Bearer i-key"}
        assert (await herald.client.get(EVENT_TYPES, headers=ingest_key)).status_code == 200
        body = {"name": "order.placed", "schema": {}}
        assert (await herald.client.post(EVENT_TYPES, json=body, headers=ingest_key)).status_code == 403
        admin = {"Authorization": "Bearer a-key"}
        assert (await herald.client.post(EVENT_TYPES, json=body, headers=admin)).status_code == 201
