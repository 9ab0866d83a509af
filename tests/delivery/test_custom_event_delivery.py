"""Custom events delivered end to end: to real receivers on 127.0.0.1, and to telemetry without
their data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.api import create_webhook, new_uuid
from tests.support.app import AppFactory
from tests.support.custom_types import create_type, custom_event
from tests.support.db import FAST, wait_for_statuses
from tests.support.posthog_receiver import TELEMETRY, running_posthog
from tests.support.receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def test_webhooks_subscribed_by_name_and_by_star_receive_the_event(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST) as herald:
        await create_type(herald.client)
        await create_webhook(
            herald.client, receiver.url("/exact"), subscriptions=[{"event_type": "order.placed"}]
        )
        await create_webhook(herald.client, receiver.url("/star"), subscriptions=[{"event_type": "*"}])
        await create_webhook(
            herald.client, receiver.url("/other"), subscriptions=[{"event_type": "project:*"}]
        )
        project = new_uuid()
        body = custom_event(project=project)
        answer = (await herald.client.post("/api/v1/events", json=body)).json()
        assert answer["deliveries"] == 2
        await receiver.wait_for(1, "/exact")
        await receiver.wait_for(1, "/star")
        await wait_for_statuses(db, {"delivered": 2})
    assert receiver.on("/other") == []
    for path in ("/exact", "/star"):
        [request] = receiver.on(path)
        assert request.headers["herald-event-type"] == "order.placed"
        event = json.loads(request.body)["event"]
        assert event == {
            "uuid": body["uuid"],
            "type": "order.placed",
            "timestamp": answer["timestamp"].replace("+00:00", "Z"),
            "project_uuid": project,
            "data": body["data"],
        }


async def test_telemetry_gets_the_type_and_timestamp_never_the_data(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with (
        running_posthog() as posthog,
        app_factory(**TELEMETRY, telemetry_url=posthog.url) as herald,
    ):
        await create_type(herald.client)
        body = custom_event(project=new_uuid(), note="secret words")
        answer = (await herald.client.post("/api/v1/events", json=body)).json()
        assert answer["deliveries"] == 1
        [item] = await posthog.wait_for_events(1)
        anonymize = herald.state.installation.anonymizer
    assert item["event"] == "order.placed"
    properties = item["properties"]
    assert properties["event_properties"] == {
        "uuid": anonymize(body["uuid"]),
        "type": "order.placed",
        "timestamp": answer["timestamp"].replace("+00:00", "Z"),
    }
    assert properties["derived_properties"] == {}
    sent = json.dumps(item)
    for secret in ("secret words", body["project_uuid"], body["data"]["order_id"], body["uuid"]):
        assert secret not in sent


async def test_a_custom_event_is_redelivered_with_the_same_body(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(**FAST) as herald:
        await create_type(herald.client)
        await create_webhook(herald.client, receiver.url(), subscriptions=[{"event_type": "order.*"}])
        body = custom_event()
        await herald.client.post("/api/v1/events", json=body)
        [first] = await receiver.wait_for(1)
        await wait_for_statuses(db, {"delivered": 1})
        [delivery] = (
            await herald.client.get("/api/v1/deliveries", params={"event_uuid": body["uuid"]})
        ).json()["items"]
        redelivered = await herald.client.post(f"/api/v1/deliveries/{delivery['uuid']}/redeliver")
        assert redelivered.status_code == 202
        [_, second] = await receiver.wait_for(2)
    assert json.loads(second.body)["event"] == json.loads(first.body)["event"]
    assert second.attempt == 2
