"""The analytics deliverer: many telemetry deliveries in one PostHog-compatible ``/batch/`` request.

Registered with the dispatcher for the ``analytics`` subscriber kind while telemetry is on
(:mod:`service.delivery.analytics` describes the interface). A request carries::

    {"api_key": HERALD_TELEMETRY_API_KEY,
     "batch": [{"event", "distinct_id", "uuid", "timestamp", "properties"}, ...]}

``distinct_id`` is the installation's random id. ``uuid`` is the keyed hash of the Herald
event uuid formatted as a UUID: stable across retries, so the backend deduplicates a batch
that is sent again, and meaningless outside this installation. ``timestamp`` is when Herald
recorded the event (the delivery's ``created_at``), also stable across retries: PostHog
deduplicates on the uuid together with the event's day. ``properties`` holds exactly the
stored ``event_properties`` and ``derived_properties`` (anonymized when the event was
recorded) plus ``app_properties`` and ``system_properties``, computed once at start-up.

The telemetry URL is set by the operator, like the database URL, not by API users, so it
is not subject to the private-destination guard that protects webhook URLs: a self-hosted
PostHog commonly lives on a private network. The deliverer therefore has its own client.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import __version__
from service.common.timefmt import format_utc
from service.config import Settings
from service.core.analytics import Anonymizer
from service.delivery.claims import ClaimedDelivery
from service.delivery.http import HttpClients, create_http_clients
from service.delivery.sending import SendFailed
from service.delivery.webhook import AttemptRecord, text_excerpt

BATCH_PATH = "/batch/"
MAX_CONNECTIONS = 4

_CREATED_AT_SQL = text("SELECT uuid, created_at FROM deliveries WHERE uuid = ANY(CAST(:uuids AS uuid[]))")


def batch_url(telemetry_url: str) -> str:
    """``<HERALD_TELEMETRY_URL>/batch/``."""
    return telemetry_url.rstrip("/") + BATCH_PATH


def app_properties(settings: Settings) -> dict[str, Any]:
    """What the telemetry says about this deployment: version and flags, never a secret or URL."""
    return {
        "herald_version": __version__,
        "dispatcher_enabled": settings.dispatcher_enabled,
        "telemetry_batch_size": settings.telemetry_batch_size,
        "api_keys_configured": bool(settings.parsed_api_keys),
        "embedded_database": settings.database_url is None,
    }


def system_properties() -> dict[str, Any]:
    """The machine Herald runs on, coarsely: OS, Python version, architecture, CPU count."""
    return {
        "os": platform.system(),
        "python_version": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def capture(
    delivery: ClaimedDelivery,
    *,
    distinct_id: str,
    anonymizer: Anonymizer,
    timestamp: datetime,
    app: Mapping[str, Any],
    system: Mapping[str, Any],
) -> dict[str, Any]:
    """One ``batch`` item for a stored analytics delivery."""
    stored = orjson.loads(delivery.payload)
    return {
        "event": delivery.event_type,
        "distinct_id": distinct_id,
        "uuid": str(anonymizer.as_uuid(delivery.event_uuid)),
        "timestamp": format_utc(timestamp),
        "properties": {
            "event_properties": stored.get("event_properties", {}),
            "derived_properties": stored.get("derived_properties", {}),
            "app_properties": dict(app),
            "system_properties": dict(system),
        },
    }


class PostHogDeliverer:
    """A :class:`~service.delivery.analytics.BatchDeliverer` for a PostHog-compatible backend."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        installation_id: UUID,
        anonymizer: Anonymizer,
        engine: AsyncEngine,
        clients: HttpClients,
        max_batch: int,
        flush_interval_s: float,
        timeout_s: float,
        app: Mapping[str, Any],
    ) -> None:
        self.url = batch_url(url)
        self._api_key = api_key
        self._distinct_id = str(installation_id)
        self._anonymizer = anonymizer
        self._engine = engine
        self._clients = clients
        self.max_batch = max_batch
        self.flush_interval_s = flush_interval_s
        self._timeout_s = timeout_s
        self._app = dict(app)
        self._system = system_properties()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, installation_id: UUID, anonymizer: Anonymizer, engine: AsyncEngine
    ) -> PostHogDeliverer:
        """Build it from the settings (telemetry must be on); call inside the running loop."""
        if settings.telemetry_url is None:
            raise ValueError("telemetry is off: HERALD_TELEMETRY_URL is unset")
        clients = create_http_clients(
            allow_private=True, max_connections=MAX_CONNECTIONS, egress=settings.egress_proxy
        )
        return cls(
            url=settings.telemetry_url,
            api_key=settings.telemetry_api_key,
            installation_id=installation_id,
            anonymizer=anonymizer,
            engine=engine,
            clients=clients,
            max_batch=settings.telemetry_batch_size,
            flush_interval_s=settings.telemetry_flush_interval_seconds,
            timeout_s=settings.delivery_timeout_seconds,
            app=app_properties(settings),
        )

    async def aclose(self) -> None:
        """Close the HTTP client (after the dispatcher stopped)."""
        await self._clients.aclose()

    async def _recorded_at(self, deliveries: Sequence[ClaimedDelivery]) -> dict[UUID, datetime]:
        # A short read of its own, finished before the request goes out.
        async with self._engine.connect() as conn:
            rows = await conn.execute(_CREATED_AT_SQL, {"uuids": [d.uuid for d in deliveries]})
            return {row.uuid: row.created_at for row in rows}

    def body(self, deliveries: Sequence[ClaimedDelivery], recorded_at: Mapping[UUID, datetime]) -> bytes:
        """The request body for ``deliveries`` (``recorded_at``: their ``created_at`` by uuid)."""
        now = datetime.now(UTC)
        batch = [
            capture(
                d,
                distinct_id=self._distinct_id,
                anonymizer=self._anonymizer,
                timestamp=recorded_at.get(d.uuid, now),
                app=self._app,
                system=self._system,
            )
            for d in deliveries
        ]
        return orjson.dumps({"api_key": self._api_key, "batch": batch})

    async def deliver(self, deliveries: Sequence[ClaimedDelivery], *, attempt_number: int) -> AttemptRecord:
        """POST ``deliveries`` as one ``/batch/`` request; a failure is reported, never raised."""
        started_at = datetime.now(UTC)
        start_s = time.perf_counter()
        status_code: int | None = None
        retry_after: str | None = None
        excerpt = b""
        error: str | None = None
        try:
            recorded_at = await self._recorded_at(deliveries)
        except Exception as exc:
            # The database is away: retried like a failed request (nothing was sent).
            recorded_at = None
            error = f"could not read the events' timestamps ({type(exc).__name__})"
        if recorded_at is not None:
            try:
                response = await self._clients.verified.post(
                    self.url,
                    content=self.body(deliveries, recorded_at),
                    headers={"content-type": "application/json", "user-agent": f"Herald/{__version__}"},
                    timeout_s=self._timeout_s,
                )
                status_code, retry_after = response.status_code, response.retry_after
                excerpt = response.body_excerpt
            except SendFailed as exc:
                error = exc.reason
        return AttemptRecord(
            number=attempt_number,
            started_at=started_at,
            duration_ms=(time.perf_counter() - start_s) * 1000.0,
            status_code=status_code,
            error=error,
            response_body=text_excerpt(excerpt),
            retry_after=retry_after,
        )
