"""Recording events: the event row and its deliveries (the outbox) in the caller's transaction.

``register_events`` is the seed's ``register_<event_type>_event`` family folded into one entry
point: the layer class of each event (``service.models.events``) knows its sections and builds
its payloads, so there is nothing left that a per-type function would add. Like the seed's
functions it adds to the caller's session and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.analytics import Anonymizer
from service.errors import Conflict
from service.models.events import build_event
from service.schemas.events import ValidatedEvent

# Channel the dispatcher LISTENs on; an ingest that created deliveries NOTIFYs it on commit.
DELIVERIES_CHANNEL = "herald_deliveries"


@dataclass(frozen=True)
class RecordContext:
    """What recording needs besides the events: how to anonymize and where telemetry goes."""

    anonymizer: Anonymizer
    analytics_subscriber_uuid: UUID
    telemetry_enabled: bool


@dataclass(frozen=True)
class Recorded:
    """The ingest answer for one event."""

    uuid: UUID
    type: str
    timestamp: datetime
    deliveries: int
    replayed: bool = False

    def answer(self) -> dict[str, Any]:
        return {
            "uuid": str(self.uuid),
            "type": self.type,
            "timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "deliveries": self.deliveries,
        }


class EventConflict(Conflict):
    """An event with this uuid exists with different content."""

    def __init__(self, uuid: UUID, index: int) -> None:
        super().__init__(f"event {uuid} already exists with different content")
        self.index = index


# One statement records every new event, the deliveries of every matching enabled webhook
# (one per subscriber however many of its subscriptions match) and, while telemetry is on,
# one analytics delivery per event. Replays (uuid already present) insert nothing.
_RECORD_SQL = text(
    f"""
WITH ev AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:types AS text[]), CAST(:kinds AS text[]),
        CAST(:timestamps AS timestamptz[]), CAST(:project_uuids AS uuid[]),
        CAST(:pipeline_uuids AS uuid[]), CAST(:environment_uuids AS uuid[]),
        CAST(:job_uuids AS uuid[]), CAST(:pipeline_run_uuids AS uuid[]),
        CAST(:image_build_uuids AS uuid[]), CAST(:run_numbers AS integer[]),
        CAST(:sections AS text[]), CAST(:payloads AS text[]), CAST(:telemetry AS text[])
    ) AS e(uuid, type, kind, timestamp, project_uuid, pipeline_uuid, environment_uuid, job_uuid,
           pipeline_run_uuid, image_build_uuid, run_number, sections, payload, telemetry)
),
new_events AS (
    INSERT INTO events (uuid, type, kind, timestamp, project_uuid, pipeline_uuid, environment_uuid,
                        job_uuid, pipeline_run_uuid, image_build_uuid, run_number, sections, payload)
    SELECT uuid, type, kind, timestamp, project_uuid, pipeline_uuid, environment_uuid, job_uuid,
           pipeline_run_uuid, image_build_uuid, run_number, CAST(sections AS jsonb), CAST(payload AS json)
    FROM ev
    ON CONFLICT (uuid) DO NOTHING
    RETURNING uuid
),
matched AS (
    SELECT DISTINCT ev.uuid AS event_uuid, s.subscriber_uuid
    FROM ev
    JOIN new_events n ON n.uuid = ev.uuid
    JOIN subscriptions s
      ON (s.event_type = ev.type OR (s.has_wildcard AND ev.type LIKE s.like_pattern))
     AND (s.project_uuid IS NULL OR s.project_uuid = ev.project_uuid)
     AND (s.job_uuid IS NULL OR s.job_uuid = ev.job_uuid)
    JOIN subscribers w ON w.uuid = s.subscriber_uuid AND w.kind = 'webhook' AND w.enabled
),
inserted AS (
    INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload)
    SELECT gen_random_uuid(), ev.uuid, ev.type, m.subscriber_uuid, 'webhook', CAST(ev.payload AS json)
    FROM matched m JOIN ev ON ev.uuid = m.event_uuid
    UNION ALL
    SELECT gen_random_uuid(), ev.uuid, ev.type, CAST(:analytics_uuid AS uuid), 'analytics',
           CAST(ev.telemetry AS json)
    FROM ev JOIN new_events n ON n.uuid = ev.uuid
    WHERE ev.telemetry IS NOT NULL
    RETURNING event_uuid
),
counts AS (SELECT event_uuid, count(*) AS deliveries FROM inserted GROUP BY event_uuid),
notified AS (SELECT pg_notify('{DELIVERIES_CHANNEL}', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS one)
SELECT n.uuid, coalesce(c.deliveries, 0) AS deliveries
FROM new_events n LEFT JOIN counts c ON c.event_uuid = n.uuid
-- Referencing "notified" makes PostgreSQL evaluate it (at most one NOTIFY per statement).
WHERE (SELECT count(*) FROM notified) >= 0
"""
)

_EXISTING_SQL = text(
    """
SELECT e.uuid, e.type, e.timestamp, e.sections,
       (SELECT count(*) FROM deliveries d WHERE d.event_uuid = e.uuid) AS deliveries
FROM events e WHERE e.uuid = ANY(CAST(:uuids AS uuid[]))
"""
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def register_events(
    session: AsyncSession, ctx: RecordContext, events: Sequence[ValidatedEvent]
) -> list[Recorded]:
    """Add ``events`` and their deliveries to the session's transaction; never commits.

    An event whose uuid already exists is a replay: with the same type and sections (and the
    same timestamp, when the retry gives one) it is answered with the original answer and
    ``replayed=True``; otherwise ``EventConflict`` names it (the caller rolls back).
    """
    now = datetime.now(UTC)
    models = [build_event(v, v.uuid or uuid4(), v.timestamp or now) for v in events]
    params: dict[str, Any] = {
        "uuids": [m.uuid for m in models],
        "types": [m.type for m in models],
        "kinds": [m.kind for m in models],
        "timestamps": [m.timestamp for m in models],
        "project_uuids": [m.project_uuid for m in models],
        "pipeline_uuids": [m.pipeline_uuid for m in models],
        "environment_uuids": [m.environment_uuid for m in models],
        "job_uuids": [m.job_uuid for m in models],
        "pipeline_run_uuids": [m.pipeline_run_uuid for m in models],
        "image_build_uuids": [m.image_build_uuid for m in models],
        "run_numbers": [m.run_number for m in models],
        "sections": [_dumps(m.sections) for m in models],
        "payloads": [_dumps(m.to_notification_payload()) for m in models],
        "telemetry": [
            _dumps(m.to_telemetry_payload(ctx.anonymizer).model_dump()) if ctx.telemetry_enabled else None
            for m in models
        ],
        "analytics_uuid": ctx.analytics_subscriber_uuid,
    }
    created = {row.uuid: int(row.deliveries) for row in await session.execute(_RECORD_SQL, params)}
    results: list[Recorded | None] = [
        Recorded(m.uuid, m.type, m.timestamp, created[m.uuid]) if m.uuid in created else None for m in models
    ]
    replays = [i for i, result in enumerate(results) if result is None]
    if replays:
        rows = await session.execute(_EXISTING_SQL, {"uuids": [models[i].uuid for i in replays]})
        existing = {row.uuid: row for row in rows}
        for i in replays:
            row = existing[models[i].uuid]
            given = events[i]
            same = row.type == given.type and row.sections == given.sections
            if given.timestamp is not None and row.timestamp != given.timestamp:
                same = False
            if not same:
                raise EventConflict(models[i].uuid, i)
            results[i] = Recorded(row.uuid, row.type, row.timestamp, int(row.deliveries), replayed=True)
    return [r for r in results if r is not None]
