"""CloudEvents at ingest, built by the official SDK: structured, binary and batch; ``id`` and
``source`` as the idempotency key (a repeat is recorded once, answered as a replay); a missing
attribute or another specversion named in the 422."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import orjson
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from tests.support.app import RunningApp
from tests.support.custom_types import create_type, order_data
from tests.support.event_samples import sample_sections

EVENTS = "/api/v1/events"
BATCH = "/api/v1/events/batch"
TYPE = "project:created"
SOURCE = "/producers/platform"


def _event(event_id: str, type_name: str = TYPE, data: Any = None, **attributes: Any) -> CloudEvent:
    return CloudEvent(
        attributes={"id": event_id, "source": SOURCE, "type": type_name, **attributes},
        data=sample_sections(TYPE) if data is None else data,
    )


async def test_a_structured_cloudevent_is_recorded_once_and_its_repeat_replayed(herald: RunningApp) -> None:
    message = to_structured_event(_event("order-42", time=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)))
    assert message.headers["content-type"].startswith("application/cloudevents+json")
    first = await herald.client.post(EVENTS, content=message.body, headers=message.headers)
    assert first.status_code == 202, first.text
    expected = str(uuid5(NAMESPACE_URL, f"{SOURCE}#order-42"))
    assert first.json()["uuid"] == expected
    assert first.json()["timestamp"] == "2026-03-04T05:06:07Z"
    again = await herald.client.post(EVENTS, content=message.body, headers=message.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    stored = (await herald.client.get(f"{EVENTS}/{expected}")).json()["event"]
    assert stored["type"] == TYPE
    feed = (await herald.client.get(EVENTS, params={"type": TYPE, "limit": 100})).json()["items"]
    assert [item["uuid"] for item in feed].count(expected) == 1


async def test_a_binary_cloudevent_is_recorded_under_its_uuid(herald: RunningApp) -> None:
    event_id = str(uuid4())
    data = sample_sections(TYPE)
    message = to_binary_event(_event(event_id, data=data))
    assert message.headers["ce-specversion"] == "1.0"
    first = await herald.client.post(EVENTS, content=message.body, headers=message.headers)
    assert first.status_code == 202, first.text
    assert first.json()["uuid"] == event_id
    stored = (await herald.client.get(f"{EVENTS}/{event_id}")).json()["event"]
    assert stored["project"] == {"uuid": data["project"]["uuid"], "name": data["project"]["name"]}
    again = await herald.client.post(EVENTS, content=message.body, headers=message.headers)
    assert again.status_code == 200


async def test_a_custom_type_takes_the_cloudevents_data_as_its_data(herald: RunningApp) -> None:
    await create_type(herald.client)
    for make in (to_structured_event, to_binary_event):
        message = make(_event(str(uuid4()), type_name="order.placed", data=order_data()))
        response = await herald.client.post(EVENTS, content=message.body, headers=message.headers)
        assert response.status_code == 202, response.text
        stored = (await herald.client.get(f"{EVENTS}/{response.json()['uuid']}")).json()["event"]
        assert stored["data"] == order_data()


async def test_a_cloudevents_batch_is_recorded_and_its_repeat_replayed(herald: RunningApp) -> None:
    events = [orjson.loads(to_structured_event(_event(f"batch-{n}-{uuid4()}")).body) for n in range(3)]
    body = orjson.dumps(events)
    headers = {"content-type": "application/cloudevents-batch+json"}
    first = await herald.client.post(BATCH, content=body, headers=headers)
    assert first.status_code == 202, first.text
    uuids = [str(uuid5(NAMESPACE_URL, f"{SOURCE}#{event['id']}")) for event in events]
    assert [item["uuid"] for item in first.json()["items"]] == uuids
    again = await herald.client.post(BATCH, content=body, headers=headers)
    assert again.status_code == 202
    assert all(item["replayed"] for item in again.json()["items"])


async def test_a_missing_attribute_or_another_specversion_is_named(herald: RunningApp) -> None:
    structured = {"content-type": "application/cloudevents+json"}
    event = orjson.loads(to_structured_event(_event("x-1")).body)
    cases: list[tuple[bytes, dict[str, str], list[Any]]] = [
        (orjson.dumps({k: v for k, v in event.items() if k != "source"}), structured, ["body", "source"]),
        (orjson.dumps(event | {"specversion": "0.3"}), structured, ["body", "specversion"]),
        (
            orjson.dumps(event | {"data": {"project": {"uuid": "nope"}}}),
            structured,
            ["body", "data", "project", "uuid"],
        ),
    ]
    binary = to_binary_event(_event("x-2"))
    cases.append(
        (binary.body, {k: v for k, v in binary.headers.items() if k != "ce-type"}, ["header", "ce-type"])
    )
    cases.append((binary.body, binary.headers | {"ce-specversion": "0.3"}, ["header", "ce-specversion"]))
    batch = orjson.dumps([event, {k: v for k, v in event.items() if k != "id"}])
    cases.append((batch, {"content-type": "application/cloudevents-batch+json"}, ["body", 1, "id"]))
    for body, headers, loc in cases:
        path = BATCH if "batch" in headers.get("content-type", "") else EVENTS
        response = await herald.client.post(path, content=body, headers=headers)
        assert response.status_code == 422, (loc, response.text)
        assert loc in [error["loc"] for error in response.json()["detail"]], (loc, response.text)
