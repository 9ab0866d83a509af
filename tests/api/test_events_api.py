"""Event ingest and the feed through the HTTP API, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from service.catalog import CATALOG
from tests.support.app import RunningApp
from tests.support.event_samples import sample_event

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

ALL_TYPES = list(CATALOG)


def _event(type_name: str = "project:created", **overrides: Any) -> dict[str, Any]:
    body = sample_event(type_name)
    body.update(overrides)
    return body


async def test_event_types_lists_the_whole_catalog(herald: RunningApp) -> None:
    response = await herald.client.get("/api/v1/event-types")
    assert response.status_code == 200
    body = response.json()
    names = [item["name"] for item in body["items"] if not item["operational"]]
    assert names == ALL_TYPES
    assert len(names) == 58
    assert len(body["items"]) == 58 + 7  # then the operational herald:* types
    assert "ping" not in names
    assert body["next_cursor"] is None
    by_name = {item["name"]: item for item in body["items"]}
    assert by_name["jupyter:image-build:failed"]["optional_filters"] == []
    assert by_name["project:created"]["optional_filters"] == [["project_uuid"]]
    assert by_name["project:cron-job:run:pipeline-run:failed"]["optional_filters"] == [
        ["project_uuid"],
        ["project_uuid", "job_uuid"],
    ]
    assert all(item["description"] for item in body["items"])


@pytest.mark.parametrize("type_name", ALL_TYPES)
async def test_every_catalog_type_is_ingested_and_read_back(herald: RunningApp, type_name: str) -> None:
    body = sample_event(type_name)
    response = await herald.client.post("/api/v1/events", json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["type"] == type_name
    assert answer["uuid"] == body["uuid"]
    assert answer["deliveries"] == 0

    read = await herald.client.get(f"/api/v1/events/{answer['uuid']}")
    assert read.status_code == 200
    event = read.json()["event"]
    assert event["uuid"] == body["uuid"]
    assert event["type"] == type_name
    if type_name.startswith("project:"):
        assert event["project"]["uuid"] == body["project"]["uuid"]
        assert event["project"]["name"] == body["project"]["name"]
    else:
        assert event["jupyter"]["image_build"]["uuid"] == body["image_build"]["uuid"]
    assert read.json()["deliveries"] == []


@pytest.mark.parametrize(
    ("tag", "status"), [(12, 202), ("lab-4.1", 202), (True, 422), (-1, 422), ("t" * 65, 422)]
)
async def test_an_image_tag_is_a_build_number_or_a_short_string(
    herald: RunningApp, tag: object, status: int
) -> None:
    body = _event("jupyter:image-build:succeeded")
    body["image_build"]["image_tag"] = tag
    response = await herald.client.post("/api/v1/events", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "image_build", "image_tag"]
        return
    event = (await herald.client.get(f"/api/v1/events/{body['uuid']}")).json()["event"]
    assert event["jupyter"]["image_build"]["image_tag"] == tag


async def test_ingest_answers_202_only_after_commit(herald: RunningApp, db: asyncpg.Connection) -> None:
    response = await herald.client.post("/api/v1/events", json=_event())
    assert response.status_code == 202
    row = await db.fetchrow(
        "SELECT type, kind FROM events WHERE uuid = $1", uuid.UUID(response.json()["uuid"])
    )
    assert row is not None
    assert row["type"] == "project:created"


async def test_uuid_and_timestamp_are_assigned_when_absent(herald: RunningApp) -> None:
    body = _event()
    del body["uuid"]
    body.pop("timestamp", None)
    response = await herald.client.post("/api/v1/events", json=body)
    assert response.status_code == 202
    answer = response.json()
    uuid.UUID(answer["uuid"])
    assert answer["timestamp"].endswith(("Z", "+00:00"))


async def test_same_uuid_same_content_replays_the_original_answer(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    body = _event("project:one-off-job:pipeline-run:failed")
    first = await herald.client.post("/api/v1/events", json=body)
    assert first.status_code == 202
    again = await herald.client.post("/api/v1/events", json=body)
    assert again.status_code == 200
    assert again.json() == first.json()
    without_timestamp = {key: value for key, value in body.items() if key != "timestamp"}
    third = await herald.client.post("/api/v1/events", json=without_timestamp)
    assert third.status_code == 200
    assert third.json() == first.json()
    assert await db.fetchval("SELECT count(*) FROM events") == 1


async def test_same_uuid_different_content_is_a_conflict(herald: RunningApp, db: asyncpg.Connection) -> None:
    body = _event()
    assert (await herald.client.post("/api/v1/events", json=body)).status_code == 202
    changed = {**body, "project": {**body["project"], "name": "another name"}}
    response = await herald.client.post("/api/v1/events", json=changed)
    assert response.status_code == 409
    assert body["uuid"] in response.json()["detail"]
    other_type = {**body, "type": "project:deleted"}
    assert (await herald.client.post("/api/v1/events", json=other_type)).status_code == 409
    assert await db.fetchval("SELECT count(*) FROM events") == 1


async def test_identical_requests_racing_give_one_202_and_200s_never_a_500(herald: RunningApp) -> None:
    body = _event()
    responses = await asyncio.gather(*(herald.client.post("/api/v1/events", json=body) for _ in range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 7 + [202]


async def test_batch_is_recorded_in_order(herald: RunningApp) -> None:
    events = [sample_event(name) for name in ALL_TYPES[:10]]
    response = await herald.client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert [item["uuid"] for item in items] == [e["uuid"] for e in events]
    assert all("replayed" not in item for item in items)


async def test_batch_is_all_or_nothing_and_names_bad_indexes(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    events = [_event(), {"type": "project:created"}, _event(), {"type": "no:such:type"}]
    response = await herald.client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert any(loc[:3] == ["body", "events", 1] for loc in locs)
    assert any(loc[:3] == ["body", "events", 3] for loc in locs)
    assert not any(loc[:3] == ["body", "events", 0] for loc in locs)
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_batch_replay_is_answered_in_place(herald: RunningApp, db: asyncpg.Connection) -> None:
    existing = _event()
    first = await herald.client.post("/api/v1/events", json=existing)
    fresh = _event()
    response = await herald.client.post("/api/v1/events/batch", json={"events": [fresh, existing]})
    assert response.status_code == 202
    items = response.json()["items"]
    assert items[1] == first.json() | {"replayed": True}
    assert "replayed" not in items[0]
    assert await db.fetchval("SELECT count(*) FROM events") == 2


async def test_batch_conflict_rolls_back_everything(herald: RunningApp, db: asyncpg.Connection) -> None:
    existing = _event()
    await herald.client.post("/api/v1/events", json=existing)
    conflicting = {**existing, "project": {**existing["project"], "name": "changed"}}
    response = await herald.client.post("/api/v1/events/batch", json={"events": [_event(), conflicting]})
    assert response.status_code == 409
    assert "events[1]" in response.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM events") == 1


async def test_same_uuid_twice_in_one_batch_is_rejected(herald: RunningApp, db: asyncpg.Connection) -> None:
    event = _event()
    response = await herald.client.post("/api/v1/events/batch", json={"events": [event, dict(event)]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 1, "uuid"]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"events": []}, 422),
        ({"events": "nope"}, 422),
        ({"events": [], "extra": 1}, 422),
        ([], 422),
    ],
)
async def test_malformed_batches_are_rejected(herald: RunningApp, body: Any, status: int) -> None:
    response = await herald.client.post("/api/v1/events/batch", json=body)
    assert response.status_code == status


async def test_batch_over_1000_events_is_rejected(herald: RunningApp) -> None:
    response = await herald.client.post("/api/v1/events/batch", json={"events": [{"type": "x"}] * 1001})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events"]


@pytest.mark.parametrize(
    ("raw", "loc_start"),
    [
        (b"{not json", ["body"]),
        (b'{"type": 5}', ["body", "type"]),
        (b'{"type": "no:such:type"}', ["body", "type"]),
        (b'{"type": "ping"}', ["body", "type"]),
        (b'"just a string"', ["body"]),
    ],
)
async def test_bad_input_is_a_422_naming_the_problem(
    herald: RunningApp, raw: bytes, loc_start: list[str]
) -> None:
    response = await herald.client.post(
        "/api/v1/events", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"][: len(loc_start)] == loc_start
    assert detail[0]["msg"]


def _json_with(type_name: str, where: tuple[str, str], json_value: bytes) -> bytes:
    """A sample body as JSON text, with ``json_value`` (raw JSON) put at ``where``."""
    body = sample_event(type_name)
    body[where[0]][where[1]] = "@@here@@"
    return orjson.dumps(body).replace(b'"@@here@@"', json_value)


NESTED_200 = b"[" * 200 + b"1" + b"]" * 200


@pytest.mark.parametrize(
    ("json_value", "loc"),
    [
        (b'"nul \\u0000 inside"', ["body", "project", "name"]),
        (b'{"key \\u0000": 1}', ["body", "pipeline_run", "parameters"]),
        (NESTED_200, ["body", "pipeline_run", "parameters"]),
    ],
)
async def test_values_postgresql_cannot_store_are_a_422_in_single_and_batch_ingest(
    herald: RunningApp, db: asyncpg.Connection, json_value: bytes, loc: list[str]
) -> None:
    type_name = "project:one-off-job:pipeline-run:failed"
    where = ("project", "name") if loc[1] == "project" else ("pipeline_run", "parameters")
    text = _json_with(type_name, where, json_value)
    headers = {"content-type": "application/json"}
    single = await herald.client.post("/api/v1/events", content=text, headers=headers)
    assert single.status_code == 422, single.text
    assert single.json()["detail"][0]["loc"][: len(loc)] == loc
    good = orjson.dumps(sample_event("project:created"))
    batch = await herald.client.post(
        "/api/v1/events/batch", content=b'{"events": [' + good + b"," + text + b"]}", headers=headers
    )
    assert batch.status_code == 422, batch.text
    assert batch.json()["detail"][0]["loc"][: len(loc) + 2] == ["body", "events", 1, *loc[1:]]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_an_escaped_backslash_before_u0000_is_plain_text(herald: RunningApp) -> None:
    text = _json_with("project:created", ("project", "name"), b'"C:\\\\u0000 folder"')
    response = await herald.client.post(
        "/api/v1/events", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    event = (await herald.client.get(f"/api/v1/events/{response.json()['uuid']}")).json()["event"]
    assert event["project"]["name"] == "C:\\u0000 folder"


async def test_unknown_top_level_key_and_missing_section_are_named(herald: RunningApp) -> None:
    body = _event("project:pipeline:created")
    body["surprise"] = 1
    del body["pipeline"]
    response = await herald.client.post("/api/v1/events", json=body)
    assert response.status_code == 422
    locs = [tuple(error["loc"]) for error in response.json()["detail"]]
    assert ("body", "surprise") in locs
    assert ("body", "pipeline") in locs


async def test_oversized_body_is_413_and_nothing_is_written(app_factory: Any, db: asyncpg.Connection) -> None:
    async with app_factory(max_event_bytes=2048) as running:
        body = _event()
        body["project"]["name"] = "x" * 4096
        response = await running.client.post("/api/v1/events", json=body)
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]
        chunked = await running.client.post(
            "/api/v1/events",
            content=_chunks(orjson.dumps(body)),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 512):
        yield data[start : start + 512]


async def test_unknown_event_is_404_and_malformed_uuid_is_422(herald: RunningApp) -> None:
    assert (await herald.client.get(f"/api/v1/events/{uuid.uuid4()}")).status_code == 404
    assert (await herald.client.get("/api/v1/events/not-a-uuid")).status_code == 422


async def test_feed_pages_newest_first_without_overlap(herald: RunningApp) -> None:
    sent = []
    for _ in range(7):
        body = _event()
        await herald.client.post("/api/v1/events", json=body)
        sent.append(body["uuid"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await herald.client.get("/api/v1/events", params=params)).json()
        seen.extend(item["uuid"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(sent))


async def test_feed_filters(herald: RunningApp) -> None:
    a = _event("project:one-off-job:started")
    b = _event("project:one-off-job:failed")
    b["project"] = a["project"]
    c = _event("jupyter:image-build:failed")
    for body in (a, b, c):
        assert (await herald.client.post("/api/v1/events", json=body)).status_code == 202

    async def uuids(**params: Any) -> set[str]:
        response = await herald.client.get("/api/v1/events", params=params)
        assert response.status_code == 200, response.text
        return {item["uuid"] for item in response.json()["items"]}

    assert await uuids(type="*:failed") == {b["uuid"], c["uuid"]}
    assert await uuids(type="project:one-off-job:started") == {a["uuid"]}
    assert await uuids(type="nothing:*:matches") == set()
    assert await uuids(project_uuid=a["project"]["uuid"]) == {a["uuid"], b["uuid"]}
    assert await uuids(job_uuid=a["job"]["uuid"]) == {a["uuid"]}


async def test_feed_time_window_is_inclusive_exclusive(herald: RunningApp) -> None:
    early = _event(timestamp="2026-01-01T00:00:00Z")
    late = _event(timestamp="2026-01-02T00:00:00+02:00")
    for body in (early, late):
        assert (await herald.client.post("/api/v1/events", json=body)).status_code == 202
    response = await herald.client.get(
        "/api/v1/events", params={"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T22:00:00Z"}
    )
    assert [item["uuid"] for item in response.json()["items"]] == [early["uuid"]]
    response = await herald.client.get("/api/v1/events", params={"since": "2026-01-01T22:00:00Z"})
    assert [item["uuid"] for item in response.json()["items"]] == [late["uuid"]]
    assert response.json()["items"][0]["timestamp"].startswith("2026-01-01T22:00:00")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 501},
        {"limit": 0},
        {"cursor": "garbage!"},
        {"since": "2026-01-01T00:00:00"},
        {"project_uuid": "x"},
    ],
)
async def test_feed_rejects_bad_query_values(herald: RunningApp, params: dict[str, Any]) -> None:
    response = await herald.client.get("/api/v1/events", params=params)
    assert response.status_code == 422


async def test_health_probes(herald: RunningApp) -> None:
    assert (await herald.client.get("/health/live")).json() == {"status": "ok"}
    ready = await herald.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["migrations"] == "ok"
