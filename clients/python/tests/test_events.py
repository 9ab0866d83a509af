"""Events against a real Herald: ingest, replays, the catalog, the feed and the errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from herald_client import (
    AsyncHerald,
    AuthError,
    ConflictError,
    Herald,
    NotFoundError,
    ValidationError,
)
from herald_process import HeraldServer

Project = dict[str, str]


def created(project: Project, **extra: object) -> dict[str, object]:
    return {"type": "project:created", "project": project, **extra}


def test_an_event_without_uuid_gets_one_and_the_body_is_left_alone(herald: Herald, project: Project) -> None:
    body = created(project)
    accepted = herald.send_event(body)
    assert uuid.UUID(accepted.uuid).version == 4
    assert accepted.type == "project:created"
    assert accepted.replayed is False
    assert accepted.deliveries == 0
    assert accepted.timestamp.tzinfo is not None
    assert "uuid" not in body
    assert herald.get_event(accepted.uuid).event["project"] == project


def test_an_event_with_its_uuid_keeps_it_and_sending_it_again_is_a_replay(
    herald: Herald, project: Project
) -> None:
    event_uuid = uuid.uuid4()
    first = herald.send_event(created(project, uuid=event_uuid))
    again = herald.send_event(created(project, uuid=str(event_uuid)))
    assert first.uuid == again.uuid == str(event_uuid)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.timestamp == first.timestamp
    assert [e["uuid"] for e in herald.events(project_uuid=project["uuid"])] == [str(event_uuid)]


def test_datetime_values_are_sent_as_rfc3339(herald: Herald, project: Project) -> None:
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    accepted = herald.send_event(created(project, timestamp=when))
    assert accepted.timestamp == when


def test_the_same_uuid_with_other_content_is_a_conflict(herald: Herald, project: Project) -> None:
    accepted = herald.send_event(created(project))
    renamed = {"uuid": project["uuid"], "name": "renamed"}
    with pytest.raises(ConflictError) as caught:
        herald.send_event(created(renamed, uuid=accepted.uuid))
    assert caught.value.status_code == 409
    assert isinstance(caught.value.detail, str)
    assert caught.value.request_id


def test_a_bad_event_is_a_validation_error_listing_the_fields(herald: Herald, project: Project) -> None:
    with pytest.raises(ValidationError) as caught:
        herald.send_event({"type": "project:created", "project": {"uuid": project["uuid"]}, "colour": "red"})
    error = caught.value
    assert error.status_code == 422
    assert isinstance(error.detail, list)
    locs = [tuple(item["loc"]) for item in error.detail]
    assert any("colour" in loc for loc in locs)
    assert any(loc[-1] == "name" for loc in locs)
    assert "colour" in str(error)


def test_an_unknown_key_is_401_and_an_ingest_key_cannot_administer(
    herald_server: HeraldServer, project: Project
) -> None:
    with Herald(herald_server.base_url, "not-a-key") as stranger, pytest.raises(AuthError) as caught:
        stranger.send_event(created(project))
    assert caught.value.status_code == 401

    with Herald(herald_server.base_url) as anonymous, pytest.raises(AuthError) as caught:
        anonymous.event_types()
    assert caught.value.status_code == 401

    with Herald(herald_server.base_url, herald_server.ingest_key) as producer:
        assert producer.send_event(created(project)).replayed is False
        with pytest.raises(AuthError) as caught:
            producer.create_webhook("ops", "http://127.0.0.1:9/hook")
        assert caught.value.status_code == 403


def test_unknown_uuids_are_not_found(herald: Herald) -> None:
    missing = uuid.uuid4()
    for call in (herald.get_event, herald.get_delivery, herald.redeliver, herald.get_webhook):
        with pytest.raises(NotFoundError) as caught:
            call(missing)
        assert caught.value.status_code == 404
        assert str(missing) in str(caught.value)


def test_event_types_lists_the_catalog(herald: Herald) -> None:
    types = {t.name: t for t in herald.event_types()}
    assert len(types) >= 58
    assert types["jupyter:image-build:failed"].optional_filters == []
    assert types["project:created"].optional_filters == [["project_uuid"]]
    assert types["project:cron-job:failed"].optional_filters == [
        ["project_uuid"],
        ["project_uuid", "job_uuid"],
    ]
    assert "ping" not in types


def test_the_feed_walks_every_page_with_filters(herald: Herald, project: Project) -> None:
    sent = [herald.send_event(created(project)).uuid for _ in range(5)]
    feed = list(herald.events(project_uuid=project["uuid"], type="project:*", page_size=2))
    assert [e["uuid"] for e in feed] == sent[::-1]
    assert list(herald.events(project_uuid=project["uuid"], type="jupyter:*")) == []


async def test_async_send_replay_conflict_and_errors(aherald: AsyncHerald, project: Project) -> None:
    accepted = await aherald.send_event(created(project))
    replay = await aherald.send_event(created(project, uuid=accepted.uuid))
    assert replay.replayed is True
    assert replay.uuid == accepted.uuid
    with pytest.raises(ConflictError):
        await aherald.send_event(created({**project, "name": "other"}, uuid=accepted.uuid))
    with pytest.raises(ValidationError) as caught:
        await aherald.send_event({"type": "no:such:type"})
    assert caught.value.detail[0]["loc"][:2] == ["body", "type"]
    with pytest.raises(NotFoundError):
        await aherald.get_event(uuid.uuid4())
    detail = await aherald.get_event(accepted.uuid)
    assert detail.event["uuid"] == accepted.uuid
    assert detail.deliveries == []
    feed = [e["uuid"] async for e in aherald.events(project_uuid=project["uuid"])]
    assert feed == [accepted.uuid]


async def test_async_auth_errors(herald_server: HeraldServer, project: Project) -> None:
    async with AsyncHerald(herald_server.base_url, "wrong") as stranger:
        with pytest.raises(AuthError) as caught:
            await stranger.send_event(created(project))
    assert caught.value.status_code == 401
    async with AsyncHerald(herald_server.base_url, herald_server.ingest_key) as producer:
        with pytest.raises(AuthError) as caught:
            [w async for w in producer.webhooks()]
    assert caught.value.status_code == 403
