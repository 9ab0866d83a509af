"""Bad input is a 422 naming the field, never a 500: the reproductions of the hardening issue
(NUL characters, times that overflow once in UTC, event times out of bounds) and their kin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from service.core.portal_links import Exchanged, exchange
from service.db import transaction
from service.schemas.common import MAX_SEQ, encode_cursor
from service.web.security import PORTAL_COOKIE
from tests.support.api import create_webhook, event_of, ingest
from tests.support.app import RunningApp
from tests.support.event_samples import sample_event

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

EARLY, LATE = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}


def locs(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


def timed(type_name: str, timestamp: str) -> dict[str, Any]:
    return {**sample_event(type_name), "timestamp": timestamp}


@pytest.mark.parametrize("value", ["\x00", "project:\x00*"])
async def test_a_nul_type_filter_of_the_feed_is_a_422(herald: RunningApp, value: str) -> None:
    response = await herald.client.get("/api/v1/events", params={"type": value})
    assert locs(response) == [["query", "type"]]


@pytest.mark.parametrize(("name", "value"), [("since", EARLY), ("until", LATE), ("since", LATE)])
async def test_a_feed_time_that_overflows_in_utc_is_a_422(herald: RunningApp, name: str, value: str) -> None:
    response = await herald.client.get("/api/v1/events", params={name: value})
    assert locs(response) == [["query", name]]
    assert "out of range" in response.text


async def test_a_feed_cursor_beyond_the_sequence_range_is_a_422(herald: RunningApp) -> None:
    response = await herald.client.get("/api/v1/events", params={"cursor": encode_cursor(MAX_SEQ + 1)})
    assert locs(response) == [["query", "cursor"]]
    last = await herald.client.get("/api/v1/events", params={"cursor": encode_cursor(MAX_SEQ)})
    assert last.status_code == 200


async def test_the_console_and_a_read_only_portal_show_a_nul_type_filter_as_a_problem(
    herald: RunningApp,
) -> None:
    project = event_of("project:created")
    await ingest(herald.client, project)
    console = await herald.client.get("/ui/events", params={"type": "a\x00b"})
    assert console.status_code == 200
    assert "Type must not contain NUL characters" in console.text
    link = await herald.client.post(
        "/api/v1/portal-links", json={"project_uuid": project["project"]["uuid"], "read_only": True}
    )
    async with transaction(herald.state.sessions) as session:
        entered = await exchange(session, link.json()["url"].rsplit("/", 1)[1])
    assert isinstance(entered, Exchanged)
    portal = await herald.client.get(
        "/portal/events", params={"type": "\x00"}, cookies={PORTAL_COOKIE: entered.session_token}
    )
    assert portal.status_code == 200
    assert "Type must not contain NUL characters" in portal.text
    times = await herald.client.get("/ui/events", params={"since": EARLY, "until": LATE})
    assert times.status_code == 200
    assert "Since is out of range" in times.text
    assert "Until is out of range" in times.text


async def test_a_webhook_named_with_a_nul_is_a_422(herald: RunningApp) -> None:
    body = {"name": "a\x00b", "url": "http://127.0.0.1:9/hook"}
    assert locs(await herald.client.post("/api/v1/subscribers/webhooks", json=body)) == [["body", "name"]]
    hook = await create_webhook(herald.client)
    patch = await herald.client.patch(f"/api/v1/subscribers/{hook['uuid']}", json={"name": "\x00"})
    assert locs(patch) == [["body", "name"]]
    pattern = await herald.client.get("/api/v1/subscribers/subscribed-to/project%00created")
    assert locs(pattern) == [["path", "event_type"]]


async def test_nul_in_a_custom_type_is_a_422(herald: RunningApp) -> None:
    created = await herald.client.post(
        "/api/v1/event-types", json={"name": "acme.thing", "description": "a\x00b", "schema": SCHEMA}
    )
    assert locs(created) == [["body", "description"]]
    bad_schema = {"type": "object", "properties": {"a\x00b": {"type": "string"}, "c": {"default": "\x00"}}}
    body = {"name": "acme.thing", "schema": bad_schema}
    refused = await herald.client.post("/api/v1/event-types", json=body)
    where = ["body", "schema", "properties"]
    assert sorted(map(str, locs(refused))) == sorted(map(str, [[*where, "a\x00b"], [*where, "c", "default"]]))
    ok = await herald.client.post("/api/v1/event-types", json={"name": "acme.thing", "schema": SCHEMA})
    assert ok.status_code == 201
    patched = await herald.client.patch("/api/v1/event-types/acme.thing", json={"description": "\x00"})
    assert locs(patched) == [["body", "description"]]
    for method in ("DELETE", "PATCH"):
        response = await herald.client.request(method, "/api/v1/event-types/a%00b", json={"description": "d"})
        assert locs(response) == [["path", "name"]]


async def test_a_custom_type_schema_with_a_number_json_cannot_write_is_a_422(herald: RunningApp) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**64}}}
    response = await herald.client.post("/api/v1/event-types", json={"name": "acme.big", "schema": schema})
    assert locs(response) == [["body", "schema", "properties", "n", "maximum"]]
    assert "beyond 64 bits" in response.text


@pytest.mark.parametrize("timestamp", [LATE, EARLY, "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"])
async def test_an_event_time_out_of_bounds_is_a_422(
    herald: RunningApp, db: asyncpg.Connection, timestamp: str
) -> None:
    single = await herald.client.post("/api/v1/events", json=timed("project:created", timestamp))
    assert locs(single) == [["body", "timestamp"]]
    batch = {"events": [sample_event("project:created"), timed("project:created", timestamp)]}
    answer = await herald.client.post("/api/v1/events/batch", json=batch)
    assert locs(answer) == [["body", "events", 1, "timestamp"]]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_an_event_time_may_be_up_to_a_day_ahead_and_from_2000_on(herald: RunningApp) -> None:
    now = datetime.now(UTC)
    for moment in (now + timedelta(hours=23), datetime(2000, 1, 1, tzinfo=UTC)):
        answer = await ingest(herald.client, timed("project:created", moment.isoformat()))
        assert answer["timestamp"].startswith(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    too_far = timed("project:created", (now + timedelta(hours=25)).isoformat())
    assert locs(await herald.client.post("/api/v1/events", json=too_far)) == [["body", "timestamp"]]


async def test_a_section_time_that_overflows_in_utc_is_a_422(herald: RunningApp) -> None:
    event = sample_event("project:environment:image-build:started")
    event["image_build"]["started_time"] = LATE
    response = await herald.client.post("/api/v1/events", json=event)
    assert locs(response) == [["body", "image_build", "started_time"]]


async def test_a_recover_window_that_overflows_in_utc_is_a_422(herald: RunningApp) -> None:
    hook = await create_webhook(herald.client)
    path = f"/api/v1/subscribers/{hook['uuid']}/recover"
    assert locs(await herald.client.post(path, json={"since": EARLY})) == [["body", "since"]]
    late = {"since": "2026-01-01T00:00:00Z", "until": LATE}
    assert locs(await herald.client.post(path, json=late)) == [["body", "until"]]
