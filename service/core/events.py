"""Recording events: the event row and its deliveries (the outbox) in one statement.

``register_events`` is the original system's ``register_<event_type>_event`` family folded into
one entry point: the layer class of each event (``service.models.events``) knows its sections
and builds its payloads, so there is nothing left that a per-type function would add. Like those
functions it never commits: it runs on the caller's connection, inside the caller's
transaction when there is one. Its write is a single statement, so without a transaction it is
atomic all the same (the single-event route relies on that to save a round trip). A batch of
``COPY_MIN_EVENTS`` or more inside a transaction is written with COPY instead (``_copy_events``).

This is the ingest hot path, so it talks to the asyncpg connection under the engine's pool
directly (one prepared statement, no ORM unit of work), and the layer classes render the
payloads from the validated data without any row being built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import asyncpg
import orjson

from service.common.channels import DELIVERIES_CHANNEL
from service.core.analytics import Anonymizer
from service.core.custom_schemas import SchemaCache, check_custom_events
from service.core.matching import matched_ctes
from service.errors import Conflict
from service.models.events import entity_values, event_class_for
from service.schemas.events import ValidatedEvent

# Channel the dispatcher LISTENs on; an ingest that created deliveries NOTIFYs it on commit.


@dataclass(frozen=True)
class RecordContext:
    """What recording needs besides the events: how to anonymize and where telemetry goes."""

    anonymizer: Anonymizer
    analytics_subscriber_uuid: UUID
    telemetry_enabled: bool
    schemas: SchemaCache


@dataclass(frozen=True)
class Recorded:
    """The ingest answer for one event."""

    uuid: UUID
    type: str
    timestamp: datetime
    deliveries: int
    replayed: bool = False


class EventConflict(Conflict):
    """An event with this uuid exists with different content."""

    def __init__(self, uuid: UUID, index: int) -> None:
        super().__init__(f"event {uuid} already exists with different content")
        self.index = index


# One statement records every new event, the deliveries of every matching enabled webhook
# and, while telemetry is on, one analytics delivery per event. Replays (uuid already present)
# insert nothing. It answers the position (1-based) of each new event in the input and its
# number of deliveries.
RECORD_SQL = f"""
WITH ev AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[], $6::uuid[], $7::uuid[],
        $8::uuid[], $9::uuid[], $10::uuid[], $11::integer[], $12::text[], $13::text[], $14::text[]
    ) WITH ORDINALITY
      AS e(uuid, type, kind, timestamp, project_uuid, pipeline_uuid, environment_uuid, job_uuid,
           pipeline_run_uuid, image_build_uuid, run_number, sections, payload, telemetry, position)
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
fresh AS (SELECT ev.* FROM ev JOIN new_events n ON n.uuid = ev.uuid),{matched_ctes("fresh")},
inserted AS (
    INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload)
    SELECT gen_random_uuid(), ev.uuid, ev.type, m.subscriber_uuid, 'webhook', CAST(ev.payload AS json)
    FROM matched m JOIN ev ON ev.uuid = m.event_uuid
    UNION ALL
    SELECT gen_random_uuid(), f.uuid, f.type, $15::uuid, 'analytics', CAST(f.telemetry AS json)
    FROM fresh f WHERE f.telemetry IS NOT NULL
    RETURNING event_uuid
),
counts AS (SELECT event_uuid, count(*) AS deliveries FROM inserted GROUP BY event_uuid),
notified AS (SELECT pg_notify('{DELIVERIES_CHANNEL}', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS one)
SELECT f.position, coalesce(c.deliveries, 0) AS deliveries
FROM fresh f LEFT JOIN counts c ON c.event_uuid = f.uuid
-- Referencing "notified" makes PostgreSQL evaluate it (at most one NOTIFY per statement).
WHERE (SELECT count(*) FROM notified) >= 0
"""  # noqa: S608  (a constant channel name; every value is a parameter)

_EXISTING_SQL = """
SELECT e.uuid, e.type, e.timestamp, CAST(e.sections AS text) AS sections,
       (SELECT count(*) FROM deliveries d WHERE d.event_uuid = e.uuid) AS deliveries
FROM events e WHERE e.uuid = ANY($1::uuid[])
"""


class EventRow(NamedTuple):
    """One event as written: the ``events`` columns of ``EVENT_COPY_COLUMNS``, then its telemetry."""

    uuid: UUID
    type: str
    kind: str
    timestamp: datetime
    project_uuid: UUID | str | None
    pipeline_uuid: UUID | str | None
    environment_uuid: UUID | str | None
    job_uuid: UUID | str | None
    pipeline_run_uuid: UUID | str | None
    image_build_uuid: UUID | str | None
    run_number: int | None
    sections: str
    payload: str
    telemetry: str | None  # the analytics delivery's payload; None while telemetry is off


EVENT_COPY_COLUMNS = EventRow._fields[:-1]
# The uuid is left to the column's default, gen_random_uuid() (migration 0008).
DELIVERY_COPY_COLUMNS = ("event_uuid", "event_type", "subscriber_uuid", "subscriber_kind", "payload")


def _event_rows(
    ctx: RecordContext, events: Sequence[ValidatedEvent], uuids: list[UUID], timestamps: list[datetime]
) -> list[EventRow]:
    """Each event's row, its payloads rendered by its layer class."""
    rows: list[EventRow] = []
    for validated, uuid, timestamp in zip(events, uuids, timestamps, strict=True):
        sections = validated.sections
        entities, run_number = entity_values(sections)
        layer = event_class_for(validated.type)
        telemetry = (
            layer.telemetry_json(uuid, validated.type, timestamp, sections, ctx.anonymizer).decode()
            if ctx.telemetry_enabled
            else None
        )
        row = (uuid, validated.type, validated.kind, timestamp, *entities, run_number)
        notification = layer.notification_json(uuid, validated.type, timestamp, sections).decode()
        payloads = (validated.sections_json.decode(), notification, telemetry)
        rows.append(EventRow._make((*row, *payloads)))  # entities in ENTITY_COLUMNS order
    return rows


def _record_args(ctx: RecordContext, rows: list[EventRow]) -> list[Any]:
    """The parameters of ``RECORD_SQL``: one array per column, then the analytics subscriber."""
    return [*(list(column) for column in zip(*rows, strict=True)), ctx.analytics_subscriber_uuid]


# A batch at least this big is written with COPY (below).
COPY_MIN_EVENTS = 50

_ANY_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM events WHERE uuid = ANY($1::uuid[]))"
_MATCH_SQL = f"""
WITH fresh AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[])
      AS f(uuid, type, project_uuid, job_uuid)
),{matched_ctes("fresh")}
SELECT event_uuid, subscriber_uuid FROM matched
"""  # noqa: S608  (constant fragments; every value is a parameter)


async def _copy_events(
    conn: asyncpg.Connection, ctx: RecordContext, rows: list[EventRow]
) -> list[Recorded] | None:
    """Record a batch of new events with COPY, in the caller's transaction; ``None`` if it cannot.

    COPY costs PostgreSQL about half of what ``RECORD_SQL`` does per event (bench/), but it
    knows no ``ON CONFLICT``: when a uuid already exists (a replay), or another ingest commits
    one of these uuids meanwhile (a unique violation, undone by a savepoint), nothing is kept
    and the caller falls back to ``RECORD_SQL``, which settles replays and conflicts.
    """
    uuids = [row.uuid for row in rows]
    if await conn.fetchval(_ANY_EXISTS_SQL, uuids):
        return None
    types = [row.type for row in rows]
    matches = await conn.fetch(
        _MATCH_SQL, uuids, types, [row.project_uuid for row in rows], [row.job_uuid for row in rows]
    )
    subscribers: dict[UUID, list[UUID]] = {}
    for match in matches:
        subscribers.setdefault(match[0], []).append(match[1])
    deliveries: list[tuple[UUID, str, UUID, str, str]] = []
    counts: list[int] = []
    for row in rows:
        mine = subscribers.get(row.uuid, ())
        deliveries.extend((row.uuid, row.type, s, "webhook", row.payload) for s in mine)
        if row.telemetry is not None:
            deliveries.append((row.uuid, row.type, ctx.analytics_subscriber_uuid, "analytics", row.telemetry))
        counts.append(len(mine) + (row.telemetry is not None))
    try:
        async with conn.transaction():  # a savepoint
            await conn.copy_records_to_table(
                "events", records=[row[:-1] for row in rows], columns=EVENT_COPY_COLUMNS
            )
            if deliveries:
                await conn.copy_records_to_table(
                    "deliveries", records=deliveries, columns=DELIVERY_COPY_COLUMNS
                )
                await conn.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
    except asyncpg.UniqueViolationError:
        return None
    return [
        Recorded(row.uuid, row.type, row.timestamp, count) for row, count in zip(rows, counts, strict=True)
    ]


async def register_events(
    conn: asyncpg.Connection, ctx: RecordContext, events: Sequence[ValidatedEvent]
) -> list[Recorded]:
    """Record ``events`` and their deliveries on ``conn``, in its transaction if any; never commits.

    An event whose uuid already exists is a replay: with the same type and sections (and the
    same timestamp, when the retry gives one) it is answered with the original answer and
    ``replayed=True``; otherwise ``EventConflict`` names it (the caller rolls back). Custom events
    are checked against their types first (``InvalidCustomEvents``: an unknown type, bad ``data``).
    """
    await check_custom_events(conn, ctx.schemas, events)
    now = datetime.now(UTC)
    uuids = [v.uuid or uuid4() for v in events]
    timestamps = [v.timestamp or now for v in events]
    event_rows = _event_rows(ctx, events, uuids, timestamps)
    if len(events) >= COPY_MIN_EVENTS and conn.is_in_transaction():
        copied = await _copy_events(conn, ctx, event_rows)
        if copied is not None:
            return copied
    rows = await conn.fetch(RECORD_SQL, *_record_args(ctx, event_rows))
    created = {row[0] - 1: int(row[1]) for row in rows}
    results: list[Recorded | None] = [
        Recorded(uuids[i], v.type, timestamps[i], created[i]) if i in created else None
        for i, v in enumerate(events)
    ]
    replays = [i for i, result in enumerate(results) if result is None]
    if replays:
        existing = {
            str(row["uuid"]): row for row in await conn.fetch(_EXISTING_SQL, [uuids[i] for i in replays])
        }
        for i in replays:
            row = existing[str(uuids[i])]
            given = events[i]
            same = row["type"] == given.type and orjson.loads(row["sections"]) == orjson.loads(
                given.sections_json
            )
            if given.timestamp is not None and row["timestamp"] != given.timestamp:
                same = False
            if not same:
                raise EventConflict(uuids[i], i)
            results[i] = Recorded(
                uuids[i], row["type"], row["timestamp"], int(row["deliveries"]), replayed=True
            )
    return [r for r in results if r is not None]
