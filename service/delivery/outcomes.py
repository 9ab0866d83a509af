"""What attempts did, and writing it: delivery rows, attempt rows, the subscriber failure clock.

An attempt ends as a :class:`Completion` (:func:`completion_of` applies the retry decision);
:func:`write_completions` writes a batch of them in the caller's transaction (the batching
itself is :class:`service.delivery.writer.OutcomeWriter`). A completion only
changes its delivery while the row is still ``delivering`` under the same lease token, so a
late completion (lease expired and re-claimed, subscriber deleted meanwhile) never
overwrites anything; its attempt is still recorded, because the request did happen.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.subscribers import disable_subscriber
from service.delivery.claims import REQUEUE_ERROR_SQL, REQUEUE_STATUS_SQL, ClaimedDelivery
from service.delivery.retry import Delivered, Gone, Outcome, Retry, decide
from service.delivery.webhook import AttemptRecord

logger = logging.getLogger(__name__)

AttemptOutcome = Literal["success", "failure"]
SubscriberKind = Literal["webhook", "analytics"]


class AttemptObserver(Protocol):
    """Told about every attempt as it ends (``service.metrics.Metrics`` is one)."""

    def observe_attempt(
        self, duration_s: float, outcome: AttemptOutcome, subscriber_kind: SubscriberKind = "webhook"
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished attempt of a claimed delivery and what follows from it."""

    delivery: ClaimedDelivery
    attempt: AttemptRecord
    outcome: Outcome
    finished_at: datetime
    destination: str
    """``scheme://host`` of the URL the attempt went to (for reasons and logs)."""
    on_written: Callable[[], None] | None = None
    """Called once the completion is written (or given up on)."""

    @property
    def status(self) -> str:
        """The delivery status this completion asks for."""
        if isinstance(self.outcome, Delivered):
            return "delivered"
        return "pending" if isinstance(self.outcome, Retry) else "failed"

    @property
    def reason(self) -> str | None:
        return None if isinstance(self.outcome, Delivered) else self.outcome.reason


def completion_of(
    delivery: ClaimedDelivery,
    record: AttemptRecord,
    *,
    destination: str,
    waits: Sequence[float],
    rng: random.Random,
    on_written: Callable[[], None] | None = None,
) -> Completion:
    """Decide what follows ``record`` (``service.delivery.retry.decide``) and wrap it for writing."""
    now = datetime.now(UTC)
    outcome = decide(
        attempt_number=record.number,
        status_code=record.status_code,
        error=record.error,
        retry_after=record.retry_after,
        waits=waits,
        now=now,
        rng=rng,
    )
    return Completion(delivery, record, outcome, now, destination, on_written)


@dataclass(frozen=True, slots=True)
class ClockUpdate:
    """What a batch says about one webhook's health (see :func:`clock_updates`)."""

    subscriber_uuid: UUID
    success_at: datetime | None
    failure_since: datetime | None
    last_reason: str | None


def clock_updates(completions: Iterable[Completion]) -> list[ClockUpdate]:
    """Summarize a batch per webhook subscriber: its latest success, and the first failure after it.

    ``failure_since`` is the start of the earliest failed attempt that finished after the
    batch's latest success (or of any failed attempt when the batch has no success).
    """
    by_subscriber: dict[UUID, list[Completion]] = {}
    for completion in completions:
        if completion.delivery.subscriber_kind == "webhook":
            by_subscriber.setdefault(completion.delivery.subscriber_uuid, []).append(completion)
    updates: list[ClockUpdate] = []
    for subscriber_uuid, items in sorted(by_subscriber.items()):
        successes = [c.finished_at for c in items if isinstance(c.outcome, Delivered)]
        success_at = max(successes, default=None)
        failures = [
            c
            for c in items
            if not isinstance(c.outcome, Delivered) and (success_at is None or c.finished_at > success_at)
        ]
        first = min(failures, key=lambda c: c.attempt.started_at, default=None)
        last = max(failures, key=lambda c: c.finished_at, default=None)
        updates.append(
            ClockUpdate(
                subscriber_uuid=subscriber_uuid,
                success_at=success_at,
                failure_since=first.attempt.started_at if first else None,
                last_reason=last.reason if last else None,
            )
        )
    return updates


_LOCK_SUBSCRIBERS_SQL = text(
    "SELECT uuid FROM subscribers WHERE uuid = ANY(CAST(:uuids AS uuid[])) ORDER BY uuid FOR NO KEY UPDATE"
)

# A retry of a subscriber disabled or deleted while the attempt was in flight is not requeued.
_COMPLETE_SQL = text(
    f"""
WITH o AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:subscribers AS uuid[]),
        CAST(:statuses AS text[]), CAST(:attempts AS integer[]), CAST(:next_at AS timestamptz[]),
        CAST(:errors AS text[]), CAST(:finished AS timestamptz[])
    ) AS o(uuid, token, subscriber_uuid, status, attempts, next_attempt_at, last_error, finished_at)
)
UPDATE deliveries d
SET status = CASE WHEN s.uuid IS NULL OR o.status = 'pending' THEN {REQUEUE_STATUS_SQL} ELSE o.status END,
    last_error = CASE WHEN s.uuid IS NULL OR (o.status = 'pending' AND NOT s.enabled) THEN {REQUEUE_ERROR_SQL}
                      ELSE o.last_error END,
    next_attempt_at = CASE WHEN o.status = 'pending' AND s.enabled THEN o.next_attempt_at END,
    delivered_at = CASE WHEN o.status = 'delivered' AND s.uuid IS NOT NULL THEN o.finished_at
                        ELSE d.delivered_at END,
    attempts_count = greatest(d.attempts_count, o.attempts),
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
FROM o LEFT JOIN subscribers s ON s.uuid = o.subscriber_uuid
WHERE d.uuid = o.uuid AND d.status = 'delivering' AND d.lease_token = o.token
RETURNING d.uuid, d.status
"""  # noqa: S608  (constant fragments, no input)
)

_ATTEMPTS_SQL = text(
    """
INSERT INTO delivery_attempts
    (delivery_uuid, number, started_at, duration_ms, status_code, error, response_body)
SELECT a.* FROM unnest(
    CAST(:uuids AS uuid[]), CAST(:numbers AS integer[]), CAST(:started AS timestamptz[]),
    CAST(:durations AS double precision[]), CAST(:codes AS integer[]), CAST(:errors AS text[]),
    CAST(:bodies AS text[])
) AS a(delivery_uuid, number, started_at, duration_ms, status_code, error, response_body)
WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.uuid = a.delivery_uuid)
"""
)

_CLOCK_SQL = text(
    """
WITH u AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:success AS timestamptz[]), CAST(:failure AS timestamptz[])
    ) AS u(uuid, success_at, failure_since)
)
UPDATE subscribers s
SET last_success_at = greatest(s.last_success_at, u.success_at),
    failing_since = CASE
        WHEN u.failure_since IS NULL THEN NULL
        WHEN u.success_at IS NULL THEN coalesce(s.failing_since, u.failure_since)
        ELSE u.failure_since END
FROM u
WHERE s.uuid = u.uuid AND s.kind = 'webhook'
  -- A healthy webhook's row is rewritten at most once a second, not on every flush.
  AND (u.failure_since IS NOT NULL OR s.failing_since IS NOT NULL OR s.last_success_at IS NULL
       OR s.last_success_at < u.success_at - interval '1 second')
RETURNING s.uuid, s.enabled, s.failing_since
"""
)


def _delivery_params(batch: Sequence[Completion]) -> dict[str, list[object]]:
    return {
        "uuids": [c.delivery.uuid for c in batch],
        "tokens": [c.delivery.lease_token for c in batch],
        "subscribers": [c.delivery.subscriber_uuid for c in batch],
        "statuses": [c.status for c in batch],
        "attempts": [c.attempt.number for c in batch],
        "next_at": [c.outcome.at if isinstance(c.outcome, Retry) else None for c in batch],
        "errors": [c.reason for c in batch],
        "finished": [c.finished_at for c in batch],
    }


def _attempt_params(batch: Sequence[Completion]) -> dict[str, list[object]]:
    return {
        "uuids": [c.delivery.uuid for c in batch],
        "numbers": [c.attempt.number for c in batch],
        "started": [c.attempt.started_at for c in batch],
        "durations": [c.attempt.duration_ms for c in batch],
        "codes": [c.attempt.status_code for c in batch],
        "errors": [c.attempt.error for c in batch],
        "bodies": [c.attempt.response_body for c in batch],
    }


async def write_completions(
    session: AsyncSession, batch: Sequence[Completion], *, disable_after_s: float, now: datetime
) -> Counter[str]:
    """Write a batch of completions in the session's transaction (never commits).

    Updates the deliveries still held under their lease, records every attempt, moves the
    subscribers' failure clock (``last_success_at`` to within a second), disables a
    subscriber that answered 410 or has been failing for more than ``disable_after_s``.
    Returns counts per final delivery status, plus ``stale`` for completions that changed
    nothing.
    """
    clock = clock_updates(batch)
    subscribers = sorted({c.delivery.subscriber_uuid for c in batch})
    # Subscriber rows first, in one order: a concurrent disable or delete then either sees this
    # batch's requeued rows or is seen by it, and two replicas' flushes cannot deadlock.
    await session.execute(_LOCK_SUBSCRIBERS_SQL, {"uuids": subscribers})
    applied = (await session.execute(_COMPLETE_SQL, _delivery_params(batch))).all()
    await session.execute(_ATTEMPTS_SQL, _attempt_params(batch))
    counts: Counter[str] = Counter(row.status for row in applied)
    counts["stale"] = len(batch) - len(applied)
    to_disable: dict[UUID, str] = {}
    for c in batch:
        if isinstance(c.outcome, Gone) and c.delivery.subscriber_kind == "webhook":
            to_disable[c.delivery.subscriber_uuid] = f"{c.destination} answered HTTP 410 Gone"
    if clock:
        params = {
            "uuids": [u.subscriber_uuid for u in clock],
            "success": [u.success_at for u in clock],
            "failure": [u.failure_since for u in clock],
        }
        reasons = {u.subscriber_uuid: u.last_reason for u in clock if u.failure_since is not None}
        limit = now - timedelta(seconds=disable_after_s)
        for row in await session.execute(_CLOCK_SQL, params):
            if (
                row.uuid in reasons
                and row.enabled
                and row.failing_since is not None
                and row.failing_since <= limit
            ):
                since = row.failing_since.isoformat(timespec="seconds")
                to_disable.setdefault(
                    row.uuid,
                    f"failing continuously since {since} (over {disable_after_s:g}s); "
                    f"last error: {reasons[row.uuid]}",
                )
    for subscriber_uuid, reason in to_disable.items():
        await disable_subscriber(session, subscriber_uuid, reason)
        counts["subscribers_disabled"] += 1
        logger.warning("subscriber disabled", extra={"subscriber": str(subscriber_uuid), "reason": reason})
    return counts
