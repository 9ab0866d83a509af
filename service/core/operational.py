"""Recording operational events: Herald's own reports about its webhooks and their deliveries.

Seven types (``service.catalog``, "Operational types"): a webhook ``disabled`` / ``enabled``, its
circuit ``circuit-opened`` / ``circuit-closed``, a delivery ``failing`` / ``failed`` /
``recovered``. Each is recorded by :func:`record` in the transaction of the change it reports
(the outcome write, a disable, a PATCH), together with its deliveries, exactly as ingest records
an event and its outbox rows; the caller commits. So an event is never lost (it commits with its
change) nor invented (it rolls back with it).

Rules kept here, in one place:

- no loops: nothing is ever recorded about a delivery of an operational event;
- ``failing`` once per delivery, ``recovered`` only after it and once (``operational_reports``);
- only subscriptions whose pattern begins with ``herald:`` match, scoped by the project that owns
  the webhook the event is about (:data:`WEBHOOK_PROJECT_SQL`);
- never to telemetry: they describe Herald's receivers, not the platform's activity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog import (
    CIRCUIT_CLOSED,
    CIRCUIT_OPENED,
    DELIVERY_FAILED,
    DELIVERY_FAILING,
    DELIVERY_RECOVERED,
    OPERATIONAL,
    is_operational,
)
from service.common.channels import DELIVERIES_CHANNEL
from service.common.timefmt import format_utc
from service.core.matching import matched_ctes
from service.models.events import event_class_for
from service.outbox import CircuitChange

# The project that owns a webhook, as an SQL expression over ``subscribers s``: the one place it
# is read (NULL for a webhook no project owns); scopes and payloads follow it.
WEBHOOK_PROJECT_SQL = "s.project_uuid"

_WEBHOOKS_SQL = text(
    f"""
SELECT s.uuid, s.name, s.enabled, s.disabled_reason, {WEBHOOK_PROJECT_SQL} AS project_uuid,
       s.circuit_state, s.circuit_since, s.circuit_next_probe_at, s.circuit_failures
FROM subscribers s
WHERE s.uuid = ANY(CAST(:uuids AS uuid[])) AND s.kind = 'webhook'
"""  # noqa: S608  (a constant expression, no input)
)

# The events, their deliveries to the enabled webhooks whose subscriptions match (service.core.
# matching: only herald: patterns reach these types), the running counts, and the wake-up.
_RECORD_SQL = text(
    f"""
WITH ev AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:types AS text[]), CAST(:kinds AS text[]),
        CAST(:projects AS uuid[]), CAST(:sections AS text[]), CAST(:payloads AS text[])
    ) AS e(uuid, type, kind, project_uuid, sections, payload)
),
new_events AS (
    INSERT INTO events (uuid, type, kind, timestamp, project_uuid, sections, payload)
    SELECT uuid, type, kind, :timestamp, project_uuid, CAST(sections AS jsonb), CAST(payload AS json)
    FROM ev
    RETURNING uuid
),
scoped AS (SELECT uuid, type, project_uuid, CAST(NULL AS uuid) AS job_uuid FROM ev),{matched_ctes("scoped")},
inserted AS (
    INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload)
    SELECT gen_random_uuid(), ev.uuid, ev.type, m.subscriber_uuid, 'webhook', CAST(ev.payload AS json)
    FROM matched m JOIN ev ON ev.uuid = m.event_uuid
    RETURNING 1
),
counted AS (
    INSERT INTO operational_counts (type, recorded)
    SELECT type, count(*) FROM ev GROUP BY type ORDER BY type
    ON CONFLICT (type) DO UPDATE SET recorded = operational_counts.recorded + excluded.recorded
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS deliveries,
       (SELECT count(*) FROM new_events) + (SELECT count(*) FROM counted) * 0 AS events,
       (SELECT pg_notify('{DELIVERIES_CHANNEL}', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS one)
"""  # noqa: S608  (constant fragments; every value is a parameter)
)

_RECORD_COLUMNS = ("uuids", "types", "kinds", "projects", "sections", "payloads")

# A failing report is written once per delivery: the insert that conflicts reports nothing.
_REPORT_FAILING_SQL = text(
    """
INSERT INTO operational_reports (delivery_uuid, failing_reported_at)
SELECT unnest(CAST(:uuids AS uuid[])), now()
ON CONFLICT (delivery_uuid) DO NOTHING
RETURNING delivery_uuid
"""
)

_REPORT_RECOVERED_SQL = text(
    """
UPDATE operational_reports SET recovered_at = now()
WHERE delivery_uuid = ANY(CAST(:uuids AS uuid[])) AND recovered_at IS NULL
RETURNING delivery_uuid
"""
)


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """What an operational event says about a delivery, as it is after the attempt."""

    uuid: UUID
    event_uuid: UUID
    event_type: str
    attempts_count: int
    last_status_code: int | None
    last_error: str | None

    def section(self) -> dict[str, Any]:
        return {
            "uuid": str(self.uuid),
            "event_uuid": str(self.event_uuid),
            "event_type": self.event_type,
            "attempts_count": self.attempts_count,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One operational event to record: its type, the webhook, and the delivery if it is about one."""

    type: str
    subscriber_uuid: UUID
    delivery: DeliveryFacts | None = None


@dataclass(frozen=True, slots=True)
class AttemptWritten:
    """A webhook delivery's attempt as the outbox applied it (stale completions are not)."""

    delivery: DeliveryFacts
    subscriber_uuid: UUID
    status: str
    """The delivery's status after the write: ``delivered``, ``pending`` or ``failed``."""


def is_reportable(event_type: str) -> bool:
    """Whether a delivery of an event of this type may be reported: never one of an operational
    event (an operational event about an operational delivery would feed itself)."""
    return not is_operational(event_type)


async def record(session: AsyncSession, occurrences: Sequence[Occurrence]) -> Counter[str]:
    """Record ``occurrences`` and their deliveries in the session's transaction (never commits).

    The webhook each is about is read here, as it is in this transaction (after the change);
    an occurrence about a webhook that no longer exists, or about a delivery of an operational
    event, is left out. Returns how many events of each type were recorded.
    """
    wanted = [
        o
        for o in occurrences
        if o.type in OPERATIONAL and (o.delivery is None or is_reportable(o.delivery.event_type))
    ]
    if not wanted:
        return Counter()
    uuids = sorted({o.subscriber_uuid for o in wanted})
    webhooks = {row.uuid: row for row in await session.execute(_WEBHOOKS_SQL, {"uuids": uuids})}
    now = datetime.now(UTC)
    columns: dict[str, list[Any]] = {
        k: [] for k in ("uuids", "types", "kinds", "projects", "sections", "payloads")
    }
    recorded: Counter[str] = Counter()
    for occurrence in wanted:
        webhook = webhooks.get(occurrence.subscriber_uuid)
        if webhook is None:
            continue
        project = webhook.project_uuid
        sections: dict[str, Any] = {
            "subscriber": {
                "uuid": str(webhook.uuid),
                "name": webhook.name,
                "project_uuid": None if project is None else str(project),
                "enabled": webhook.enabled,
                "disabled_reason": webhook.disabled_reason,
            }
        }
        if occurrence.delivery is not None:
            sections["delivery"] = occurrence.delivery.section()
        if occurrence.type in (CIRCUIT_OPENED, CIRCUIT_CLOSED):
            sections["circuit"] = circuit_section(webhook)
        uuid = uuid4()
        layer = event_class_for(occurrence.type)
        columns["uuids"].append(uuid)
        columns["types"].append(occurrence.type)
        columns["kinds"].append(OPERATIONAL[occurrence.type].kind)
        columns["projects"].append(project)
        columns["sections"].append(orjson.dumps(sections).decode())
        columns["payloads"].append(layer.notification_json(uuid, occurrence.type, now, sections).decode())
        recorded[occurrence.type] += 1
    if recorded:
        await session.execute(_RECORD_SQL, {**columns, "timestamp": now})
    return recorded


async def report_attempts(
    session: AsyncSession, written: Sequence[AttemptWritten], *, failing_after_attempts: int
) -> Counter[str]:
    """Record what a batch of applied attempts says (never commits).

    ``failing``: the attempt numbered ``failing_after_attempts`` or later failed, the first time
    for this delivery. ``failed``: the delivery ended failed by its own attempt (a webhook
    disabled meanwhile is reported once, as ``herald:subscriber:disabled``). ``recovered``:
    delivered after a ``failing`` report, once.
    """
    mine = [w for w in written if is_reportable(w.delivery.event_type)]
    if not mine:
        return Counter()
    by_uuid = {w.delivery.uuid: w for w in mine}
    failing = sorted(
        w.delivery.uuid
        for w in mine
        if w.status != "delivered" and w.delivery.attempts_count >= failing_after_attempts
    )
    delivered = sorted(w.delivery.uuid for w in mine if w.status == "delivered")
    occurrences: list[Occurrence] = []
    if failing:
        rows = await session.execute(_REPORT_FAILING_SQL, {"uuids": failing})
        occurrences.extend(_about(DELIVERY_FAILING, by_uuid[row.delivery_uuid]) for row in rows)
    occurrences.extend(_about(DELIVERY_FAILED, w) for w in mine if w.status == "failed")
    if delivered:
        rows = await session.execute(_REPORT_RECOVERED_SQL, {"uuids": delivered})
        occurrences.extend(_about(DELIVERY_RECOVERED, by_uuid[row.delivery_uuid]) for row in rows)
    return await record(session, occurrences)


def circuit_section(webhook: Any) -> dict[str, Any]:
    """A webhook's ``circuit`` object (as the subscriber object shows it) from its row's
    ``circuit_*`` columns; ``next_probe_at`` only while open (half-open: the probe is out)."""
    probe_at = webhook.circuit_next_probe_at if webhook.circuit_state == "open" else None
    return {
        "state": webhook.circuit_state,
        "since": None if webhook.circuit_since is None else format_utc(webhook.circuit_since),
        "next_probe_at": None if probe_at is None else format_utc(probe_at),
        "consecutive_failures": webhook.circuit_failures,
    }


async def report_circuits(session: AsyncSession, changes: Sequence[CircuitChange]) -> Counter[str]:
    """Record ``circuit-opened`` / ``circuit-closed`` for the circuits that changed (never commits)."""
    types = {"opened": CIRCUIT_OPENED, "closed": CIRCUIT_CLOSED}
    return await record(session, [Occurrence(types[c.transition], c.subscriber_uuid) for c in changes])


def _about(type_name: str, written: AttemptWritten) -> Occurrence:
    return Occurrence(type_name, written.subscriber_uuid, written.delivery)
