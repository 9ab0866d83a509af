"""A retried send is a replay, end to end: a proxy lets Herald record the event, then loses
the answer (a 503, or a dropped connection); the client sends the same event again."""

from __future__ import annotations

import pytest
from herald_client import AsyncHerald, Herald, UnavailableError
from herald_process import HeraldServer
from receivers import FlakyProxy, Spoil

Project = dict[str, str]


def test_a_lost_answer_with_retry_after_is_retried_and_replayed(
    herald_server: HeraldServer, herald: Herald, project: Project
) -> None:
    sleeps: list[float] = []
    with (
        FlakyProxy(herald_server.base_url, Spoil(503, {"Retry-After": "1"})) as proxy,
        Herald(proxy.url, herald_server.ingest_key, sleep=sleeps.append) as client,
    ):
        accepted = client.send_event({"type": "project:created", "project": project})
    assert proxy.upstream == [202, 200]  # recorded by the first try, replayed by the second
    assert sleeps == [1.0]
    assert accepted.replayed is True
    assert [e["uuid"] for e in herald.events(project_uuid=project["uuid"])] == [accepted.uuid]


def test_a_dropped_connection_is_retried_and_replayed(
    herald_server: HeraldServer, herald: Herald, project: Project
) -> None:
    sleeps: list[float] = []
    events = [{"type": "project:created", "project": project} for _ in range(3)]
    with (
        FlakyProxy(herald_server.base_url, Spoil(drop=True), Spoil(drop=True)) as proxy,
        Herald(proxy.url, herald_server.ingest_key, sleep=sleeps.append) as client,
    ):
        answers = client.send_events(events)
    assert proxy.upstream == [202, 202, 202]  # a replayed batch is still answered 202
    assert len(sleeps) == 2
    assert [a.replayed for a in answers] == [True, True, True]
    feed = [e["uuid"] for e in herald.events(project_uuid=project["uuid"])]
    assert feed == [a.uuid for a in reversed(answers)]


def test_when_every_answer_is_lost_the_error_is_unavailable(
    herald_server: HeraldServer, project: Project
) -> None:
    spoils = [Spoil(503) for _ in range(3)]
    with (
        FlakyProxy(herald_server.base_url, *spoils) as proxy,
        Herald(proxy.url, herald_server.ingest_key, max_retries=2, sleep=lambda _: None) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.send_event({"type": "project:created", "project": project})
    assert caught.value.status_code == 503
    assert proxy.upstream == [202, 200, 200]


async def test_async_lost_answer_is_retried_and_replayed(
    herald_server: HeraldServer, project: Project
) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with FlakyProxy(herald_server.base_url, Spoil(502), Spoil(drop=True)) as proxy:
        async with AsyncHerald(proxy.url, herald_server.ingest_key, sleep=sleep) as client:
            accepted = await client.send_event({"type": "project:created", "project": project})
    assert proxy.upstream == [202, 200, 200]
    assert len(sleeps) == 2
    assert accepted.replayed is True
