"""What attempts did, and what follows: the retry decision, the outbox write, auto-disable.

An attempt ends as a :class:`Completion` (:func:`completion_of` applies the retry decision);
:func:`write_completions` writes a batch of them in the caller's transaction through the outbox
(:func:`service.outbox.complete`: guarded by the lease, attempts recorded, failure clock moved),
then disables the webhooks that answered 410 or have been failing for too long, and records the
operational events all this reports (``service.core.operational``), in the same transaction. The
batching itself is :class:`service.delivery.writer.OutcomeWriter`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service import outbox
from service.core import operational
from service.core.subscribers import disable_subscriber
from service.delivery.claims import ClaimedDelivery
from service.delivery.retry import Delivered, Gone, Outcome, Retry, breaks_circuit, decide, pause_s
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
    paused_until: datetime | None = None
    """The answer was a 429 or 503 with ``Retry-After``: none of the webhook's deliveries is sent
    before then."""
    circuit_failed: bool = False
    """The attempt counts against the webhook's circuit (``retry.breaks_circuit``)."""

    @property
    def status(self) -> outbox.DeliveryStatus:
        """The delivery status this completion asks for."""
        if isinstance(self.outcome, Delivered):
            return outbox.DeliveryStatus.DELIVERED
        if isinstance(self.outcome, Retry):
            return outbox.DeliveryStatus.PENDING
        return outbox.DeliveryStatus.FAILED

    @property
    def next_attempt_at(self) -> datetime | None:
        """When to try again (a retry only)."""
        return self.outcome.at if isinstance(self.outcome, Retry) else None

    @property
    def reason(self) -> str | None:
        """The ``last_error`` to record (``None`` when delivered)."""
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
    wait_s = pause_s(record.status_code, record.retry_after, now)
    paused_until = None if wait_s is None else now + timedelta(seconds=wait_s)
    failed = breaks_circuit(record.status_code, record.retry_after, now)
    return Completion(delivery, record, outcome, now, destination, on_written, paused_until, failed)


def _written(batch: Sequence[Completion], applied: dict[UUID, str]) -> list[operational.AttemptWritten]:
    # The webhook attempts the outbox applied as asked: a retry turned "failed" because its
    # webhook was disabled meanwhile is the disable's to report, not this attempt's.
    written: list[operational.AttemptWritten] = []
    for c in batch:
        delivery = c.delivery
        if delivery.subscriber_kind != "webhook" or applied.get(delivery.uuid) != c.status:
            continue
        facts = operational.DeliveryFacts(
            uuid=delivery.uuid,
            event_uuid=delivery.event_uuid,
            event_type=delivery.event_type,
            attempts_count=max(delivery.attempts_count, c.attempt.number),
            last_status_code=c.attempt.status_code,
            last_error=c.reason,
        )
        written.append(operational.AttemptWritten(facts, delivery.subscriber_uuid, c.status))
    return written


async def write_completions(
    session: AsyncSession,
    batch: Sequence[Completion],
    *,
    disable_after_s: float,
    failing_after_attempts: int,
    now: datetime,
    circuit: outbox.CircuitPolicy | None = None,
) -> Counter[str]:
    """Write a batch of completions in the session's transaction (never commits).

    The outbox writes the deliveries, attempts and failure clock; then a webhook that answered
    410, or has been failing for more than ``disable_after_s``, is disabled, and the operational
    events follow (``failing`` from attempt ``failing_after_attempts`` on; a circuit that opened
    or closed under ``circuit``). Returns counts per
    final delivery status, ``stale`` for completions that changed nothing,
    and ``subscribers_disabled`` (the operational events are counted by the outbox's own table).
    """
    completed = await outbox.complete(session, batch, circuit=circuit or outbox.CircuitPolicy(), now=now)
    counts = completed.counts
    await operational.report_attempts(
        session, _written(batch, completed.applied), failing_after_attempts=failing_after_attempts
    )
    for change in completed.circuits:
        counts[f"circuits_{change.transition}"] += 1
        logger.warning(
            "webhook circuit %s", change.transition, extra={"subscriber": str(change.subscriber_uuid)}
        )
    await operational.report_circuits(session, completed.circuits)
    to_disable: dict[UUID, str] = {}
    for c in batch:
        if isinstance(c.outcome, Gone) and c.delivery.subscriber_kind == "webhook":
            to_disable[c.delivery.subscriber_uuid] = f"{c.destination} answered HTTP 410 Gone"
    limit = now - timedelta(seconds=disable_after_s)
    for failing in completed.failing:
        if failing.failing_since <= limit:
            since = failing.failing_since.isoformat(timespec="seconds")
            to_disable.setdefault(
                failing.subscriber_uuid,
                f"failing continuously since {since} (over {disable_after_s:g}s); "
                f"last error: {failing.last_reason}",
            )
    for subscriber_uuid, reason in to_disable.items():
        await disable_subscriber(session, subscriber_uuid, reason)
        counts["subscribers_disabled"] += 1
        logger.warning("subscriber disabled", extra={"subscriber": str(subscriber_uuid), "reason": reason})
    return counts
