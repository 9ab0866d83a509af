"""``send_events`` against a real Herald: chunks of 1000, one transaction (one POST) each."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from herald_client import AsyncHerald, ConflictError, Herald, ValidationError
from herald_process import HeraldServer

Project = dict[str, str]


class Recorder:
    """An httpx event hook noting the size of every batch POSTed."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/api/v1/events/batch":
            self.batches.append(len(json.loads(request.content)["events"]))

    async def hook(self, request: httpx.Request) -> None:
        self(request)


def bodies(project: Project, count: int) -> list[dict[str, Any]]:
    """Events of the project; every other one has its own uuid."""
    events: list[dict[str, Any]] = [{"type": "project:created", "project": project} for _ in range(count)]
    for index in range(0, count, 2):
        events[index]["uuid"] = str(uuid.uuid4())
    return events


@pytest.fixture
def recorded(herald_server: HeraldServer) -> Iterator[tuple[Herald, Recorder]]:
    recorder = Recorder()
    with (
        httpx.Client(event_hooks={"request": [recorder]}) as http,
        Herald(herald_server.base_url, herald_server.admin_key, http_client=http) as client,
    ):
        yield client, recorder


def check_answers(events: list[dict[str, Any]], answers: list[Any]) -> None:
    assert len(answers) == len(events)
    for event, answer in zip(events, answers, strict=True):
        assert answer.uuid == event.get("uuid", answer.uuid)
        assert answer.replayed is False
    assert len({a.uuid for a in answers}) == len(events)


def test_2500_events_go_in_three_transactions_answered_in_order(
    recorded: tuple[Herald, Recorder], project: Project
) -> None:
    client, recorder = recorded
    events = bodies(project, 2500)
    answers = client.send_events(events)
    assert recorder.batches == [1000, 1000, 500]
    check_answers(events, answers)
    assert all("uuid" not in e for e in events[1::2])  # the caller's dicts are left alone
    feed = [e["uuid"] for e in client.events(project_uuid=project["uuid"], page_size=500)]
    assert feed == [a.uuid for a in reversed(answers)]


def test_resending_a_batch_replays_its_events(recorded: tuple[Herald, Recorder], project: Project) -> None:
    client, recorder = recorded
    events = [{"type": "project:created", "project": project, "uuid": str(uuid.uuid4())} for _ in range(3)]
    first = client.send_events(events)
    again = client.send_events(events)
    assert [a.replayed for a in again] == [True, True, True]
    assert [a.uuid for a in again] == [a.uuid for a in first]
    assert recorder.batches == [3, 3]


def test_no_events_make_no_request(recorded: tuple[Herald, Recorder]) -> None:
    client, recorder = recorded
    assert client.send_events([]) == []
    assert recorder.batches == []


def test_a_bad_event_in_a_later_chunk_names_its_index_in_the_whole_list(
    herald: Herald, project: Project
) -> None:
    events = bodies(project, 1500)
    events[1234] = {"type": "project:created", "project": {"name": "no uuid"}}
    with pytest.raises(ValidationError) as caught:
        herald.send_events(events)
    error = caught.value
    assert [item["loc"][:3] for item in error.detail] == [["body", "events", 1234]]
    assert "events.1234" in str(error)
    # The first chunk was its own transaction: it stays recorded, and the error says so.
    assert len(error.accepted) == 1000
    assert [a.uuid for a in error.accepted[::2]] == [e["uuid"] for e in events[:1000:2]]
    assert len(list(herald.events(project_uuid=project["uuid"], page_size=500))) == 1000


def test_a_conflict_in_a_later_chunk_names_its_index(herald: Herald, project: Project) -> None:
    first = herald.send_event({"type": "project:created", "project": project})
    events = bodies(project, 1001)
    events[1000] = {"type": "project:deleted", "project": project, "uuid": first.uuid}
    with pytest.raises(ConflictError) as caught:
        herald.send_events(events)
    assert "events[1000]" in str(caught.value.detail)
    assert len(caught.value.accepted) == 1000


async def test_async_2500_events_in_three_transactions(herald_server: HeraldServer, project: Project) -> None:
    recorder = Recorder()
    async with (
        httpx.AsyncClient(event_hooks={"request": [recorder.hook]}) as http,
        AsyncHerald(herald_server.base_url, herald_server.ingest_key, http_client=http) as client,
    ):
        events = bodies(project, 2500)
        answers = await client.send_events(iter(events))
    assert recorder.batches == [1000, 1000, 500]
    check_answers(events, answers)
