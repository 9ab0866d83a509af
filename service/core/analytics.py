"""Telemetry: the analytics ``Event`` enumeration, the anonymized payload, ``send_event``.

Herald sends every event, completely anonymized, to a PostHog-compatible backend. Identifiers
are replaced by a keyed hash (HMAC-SHA256 with a per-installation secret): stable within one
installation, so events about the same project can be related, and meaningless outside it.

An event must be listed in :class:`Event` to be sent: the catalog types (sent for every
ingested event), the service's own ``heartbeat-trigger`` and the client-side events front
ends relay through ``POST /api/v1/analytics``.
:func:`send_event` never touches the network: it writes a delivery for the analytics
subscriber in the caller's transaction (the outbox), which the dispatcher sends in batches.
Turning telemetry off cancels what is still queued (``service.outbox.cancel_telemetry``).
"""

from __future__ import annotations

import hmac
import logging
import re
from enum import StrEnum
from typing import Literal
from uuid import UUID, uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog import CATALOG
from service.common.channels import DELIVERIES_CHANNEL
from service.common.telemetry import TelemetryData
from service.common.urls import url_origin
from service.config import Settings

logger = logging.getLogger(__name__)


class Event(StrEnum):
    """Every event Herald may send as telemetry; a name not listed here is never sent."""

    # The service's own events.
    HEARTBEAT_TRIGGER = "heartbeat-trigger"
    # Client-side events, relayed for front ends by ``POST /api/v1/analytics``.
    VIEW_LOADED = "view:loaded"
    ALERT_SHOWN = "alert:shown"
    CONFIRM_SHOWN = "confirm:shown"
    DEBUG_PING = "debug-ping"
    PROJECT_PIPELINE_SAVED = "project:pipeline:saved"
    PROJECT_ONE_OFF_JOB_DUPLICATED = "project:one-off-job:duplicated"
    PROJECT_CRON_JOB_DUPLICATED = "project:cron-job:duplicated"
    # The catalog: one per ingested event, named after it (``project:created`` → PROJECT_CREATED).
    _ignore_ = "members name"
    members = vars()
    for name in CATALOG:
        members[re.sub(r"[^A-Z0-9]+", "_", name.upper())] = name


SERVICE_EVENTS: frozenset[Event] = frozenset({Event.HEARTBEAT_TRIGGER})
CLIENT_EVENTS: frozenset[Event] = frozenset(
    {
        Event.VIEW_LOADED,
        Event.ALERT_SHOWN,
        Event.CONFIRM_SHOWN,
        Event.DEBUG_PING,
        Event.PROJECT_PIPELINE_SAVED,
        Event.PROJECT_ONE_OFF_JOB_DUPLICATED,
        Event.PROJECT_CRON_JOB_DUPLICATED,
    }
)
"""The names the relay accepts: catalog events come only through ingest."""

EventSource = Literal["catalog", "client", "service"]


def event_source(event: Event) -> EventSource:
    """Where an event comes from: ingest (``catalog``), a front end (``client``) or Herald itself."""
    if event in CLIENT_EVENTS:
        return "client"
    if event in SERVICE_EVENTS:
        return "service"
    return "catalog"


def telemetry_off_reason(settings: Settings) -> str | None:
    """Why telemetry is off (``None`` while it is on), in words an API client or operator reads."""
    if settings.telemetry_disabled:
        return "telemetry is disabled (HERALD_TELEMETRY_DISABLED=true)"
    if settings.telemetry_url is None:
        return "telemetry is disabled (HERALD_TELEMETRY_URL is not set)"
    return None


def log_telemetry_status(settings: Settings, *, cancelled: int = 0) -> None:
    """The start-up line saying whether telemetry is on and where it goes (``scheme://host``)."""
    reason = telemetry_off_reason(settings)
    if reason is None and settings.telemetry_url is not None:
        origin = url_origin(settings.telemetry_url)
        logger.info("telemetry is on: anonymized events go to %s", origin, extra={"telemetry": origin})
    else:
        logger.info(
            "telemetry is off: %s; %d unsent telemetry deliveries cancelled",
            reason,
            cancelled,
            extra={"telemetry": "off", "cancelled": cancelled},
        )


class UnknownEvent(ValueError):
    """A telemetry event name that is not in :class:`Event`."""


class Anonymizer:
    """Keyed hash of identifiers: ``anonymizer(uuid)`` → 32 hex characters.

    Built from the installation's secret key. UUIDs are hashed in their canonical form, so
    ``UUID(x)``, ``str(UUID(x))`` and an upper-case spelling of it give the same hash.
    """

    HEX_CHARS = 32

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the anonymizer key must not be empty")
        self._key = key

    def _digest(self, value: UUID | str) -> bytes:
        # hmac.digest: the one-shot C path, about 3x faster than building an hmac object.
        return hmac.digest(self._key, _canonical(value).encode("utf-8"), "sha256")

    def __call__(self, value: UUID | str) -> str:
        """The keyed hash of ``value`` as lower-case hex (128 bits)."""
        return self._digest(value).hex()[: self.HEX_CHARS]

    def as_uuid(self, value: UUID | str) -> UUID:
        """The keyed hash of ``value`` formatted as a UUID (version 8, "custom").

        Used as the telemetry backend's deduplication id: stable across retries of the same
        event, unrelated to the event's real uuid outside this installation.
        """
        number = int.from_bytes(self._digest(value)[:16], "big")
        number &= ~(0xF << 76)  # version nibble
        number |= 8 << 76
        number &= ~(0x3 << 62)  # RFC 4122 variant bits: 0b10
        number |= 0x2 << 62
        return UUID(int=number)


def _canonical(value: UUID | str) -> str:
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(value))
    except ValueError:
        return value


# One statement: the delivery and the wake-up of the dispatchers (sent when the caller commits).
_SEND_SQL = text(
    f"""
WITH inserted AS (
    INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload)
    VALUES (:uuid, :event_uuid, :event_type, :subscriber_uuid, 'analytics', CAST(:payload AS json))
    RETURNING 1
)
SELECT pg_notify('{DELIVERIES_CHANNEL}', '') FROM inserted
"""  # noqa: S608  (a constant channel name, no input)
)


def parse_event(name: str) -> Event:
    """The :class:`Event` called ``name``; :class:`UnknownEvent` if there is none."""
    try:
        return Event(name)
    except ValueError:
        raise UnknownEvent(f"{name[:100]!r} is not an analytics event") from None


async def send_event(
    session: AsyncSession,
    event: Event | str,
    data: TelemetryData,
    *,
    telemetry_enabled: bool,
    analytics_subscriber_uuid: UUID,
) -> bool:
    """Queue one telemetry event in the caller's transaction; never commits, never sends.

    Refuses (:class:`UnknownEvent`) a name not in :class:`Event`. While telemetry is on, adds
    one delivery for the analytics subscriber (a fresh event uuid, no ``events`` row: such
    events are not in the feed) and wakes the dispatchers on commit; returns True. While
    telemetry is off, writes nothing and returns False. ``data`` must already be anonymized.
    """
    name = parse_event(event)
    if not telemetry_enabled:
        return False
    params = {
        "uuid": uuid4(),
        "event_uuid": uuid4(),
        "event_type": name.value,
        "subscriber_uuid": analytics_subscriber_uuid,
        "payload": orjson.dumps(data.model_dump()).decode(),
    }
    await session.execute(_SEND_SQL, params)
    return True
