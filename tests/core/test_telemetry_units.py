"""The analytics enumeration, ``send_event`` and the PostHog body, without a backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import pytest

from service.catalog import CATALOG
from service.common.telemetry import TelemetryData
from service.common.urls import url_origin
from service.core.analytics import (
    CLIENT_EVENTS,
    Anonymizer,
    Event,
    UnknownEvent,
    event_source,
    send_event,
)
from service.delivery.claims import ClaimedDelivery
from service.delivery.posthog import app_properties, batch_url, capture, system_properties
from tests.support.app import RunningApp, make_settings

SEED_EXTRA_EVENTS = {
    "heartbeat-trigger",
    "view:loaded",
    "alert:shown",
    "confirm:shown",
    "debug-ping",
    "project:pipeline:saved",
    "project:one-off-job:duplicated",
    "project:cron-job:duplicated",
}


def test_event_enumeration_is_the_catalog_plus_the_seeds_client_and_service_events() -> None:
    assert {event.value for event in Event} == set(CATALOG) | SEED_EXTRA_EVENTS
    assert len(Event) == 58 + 8
    assert {event.value for event in CLIENT_EVENTS} == SEED_EXTRA_EVENTS - {"heartbeat-trigger"}
    assert event_source(Event.HEARTBEAT_TRIGGER) == "service"
    assert event_source(Event("project:created")) == "catalog"
    assert event_source(Event.VIEW_LOADED) == "client"


def test_telemetry_origin_shows_scheme_and_host_only() -> None:
    assert url_origin("https://user:pw@ph.example.com:8443/ingest?token=x") == "https://ph.example.com"
    assert batch_url("https://ph.example.com/") == "https://ph.example.com/batch/"
    assert batch_url("https://ph.example.com/prefix") == "https://ph.example.com/prefix/batch/"


def test_app_properties_say_whether_keys_are_configured_but_never_the_keys() -> None:
    settings = make_settings(None, api_keys="admin:s3cret-admin,ingest:s3cret-ingest", telemetry_batch_size=7)
    props = app_properties(settings)
    assert props["api_keys_configured"] is True
    assert props["embedded_database"] is True
    assert props["telemetry_batch_size"] == 7
    assert "s3cret" not in json.dumps(props)
    assert set(system_properties()) == {"os", "python_version", "machine", "cpu_count"}


def test_capture_item_has_the_posthog_shape_and_a_keyed_event_uuid() -> None:
    anonymizer = Anonymizer(b"k" * 32)
    event_uuid = uuid4()
    delivery = ClaimedDelivery(
        uuid=uuid4(),
        lease_token=uuid4(),
        event_uuid=event_uuid,
        event_type="project:created",
        subscriber_uuid=uuid4(),
        subscriber_kind="analytics",
        payload=json.dumps({"event_properties": {"a": 1}, "derived_properties": {"b": 2}}),
        attempts_count=0,
    )
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    item = capture(
        delivery, distinct_id="inst", anonymizer=anonymizer, timestamp=when, app={"x": 1}, system={"y": 2}
    )
    assert set(item) == {"event", "distinct_id", "uuid", "timestamp", "properties"}
    assert item["uuid"] == str(anonymizer.as_uuid(event_uuid)) != str(event_uuid)
    assert UUID(item["uuid"]).version == 8
    assert item["timestamp"] == "2026-01-02T03:04:05Z"
    assert item["properties"] == {
        "event_properties": {"a": 1},
        "derived_properties": {"b": 2},
        "app_properties": {"x": 1},
        "system_properties": {"y": 2},
    }


async def _analytics_rows(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT event_uuid, event_type, status, CAST(payload AS text) AS payload FROM deliveries "
        "WHERE subscriber_kind = 'analytics'"
    )


@pytest.mark.parametrize("telemetry_on", [True, False])
async def test_send_event_writes_one_delivery_only_while_telemetry_is_on(
    herald: RunningApp, db: asyncpg.Connection, telemetry_on: bool
) -> None:
    data = TelemetryData(event_properties={"active": True}, derived_properties={})
    subscriber = herald.state.installation.analytics_subscriber_uuid
    async with herald.state.sessions() as session, session.begin():
        queued = await send_event(
            session,
            Event.HEARTBEAT_TRIGGER,
            data,
            telemetry_enabled=telemetry_on,
            analytics_subscriber_uuid=subscriber,
        )
    assert queued is telemetry_on
    rows = await _analytics_rows(db)
    if not telemetry_on:
        assert rows == []
        return
    [row] = rows
    assert row["event_type"] == "heartbeat-trigger"
    assert row["status"] == "pending"
    assert json.loads(row["payload"]) == {"event_properties": {"active": True}, "derived_properties": {}}
    # Not an event of the feed.
    assert await db.fetchval("SELECT count(*) FROM events WHERE uuid = $1", row["event_uuid"]) == 0


async def test_send_event_refuses_a_name_outside_the_enumeration(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    data = TelemetryData(event_properties={}, derived_properties={})
    async with herald.state.sessions() as session, session.begin():
        with pytest.raises(UnknownEvent):
            await send_event(
                session,
                "project:exploded",
                data,
                telemetry_enabled=True,
                analytics_subscriber_uuid=herald.state.installation.analytics_subscriber_uuid,
            )
        assert await send_event(
            session,
            "view:loaded",
            data,
            telemetry_enabled=True,
            analytics_subscriber_uuid=herald.state.installation.analytics_subscriber_uuid,
        )
    assert [row["event_type"] for row in await _analytics_rows(db)] == ["view:loaded"]


def test_telemetry_is_on_only_with_a_url_and_not_disabled() -> None:
    assert not make_settings(None, telemetry_url=None).telemetry_enabled
    assert not make_settings(None, telemetry_url="  ").telemetry_enabled
    assert not make_settings(None, telemetry_url="http://x", telemetry_disabled=True).telemetry_enabled
    assert make_settings(None, telemetry_url="http://x").telemetry_enabled
