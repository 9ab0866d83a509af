"""Completions: ``delivering`` → ``delivered``, ``pending`` (rescheduled) or ``failed`` after an attempt.

:func:`complete` writes a batch of finished attempts in the caller's transaction: the delivery
rows still held under their lease, one ``delivery_attempts`` row per attempt, the webhooks'
failure clock (``last_success_at``, ``failing_since``) and their pauses (``paused_until``, after a
429 or 503 with ``Retry-After``). A completion whose lease is gone (expired
and re-claimed, or cancelled by a delete) changes no delivery; its attempt is still recorded,
because the request did happen. A reschedule of a subscriber disabled or deleted while the
attempt was in flight settles the row instead (``failed`` / ``cancelled``).

What an attempt asks for (the retry decision) and what follows a failing clock (disabling the
webhook) are decided by the caller; this module only writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.models.deliveries import DeliveryStatus
from service.models.subscribers import SubscriberKind
from service.outbox import queries
from service.outbox.circuits import CircuitAttempt, CircuitChange, CircuitPolicy, move_circuits
from service.outbox.claims import Leased


class ClaimedRow(Leased, Protocol):
    """The claimed delivery an attempt was made for."""

    @property
    def subscriber_kind(self) -> str: ...
    @property
    def probe(self) -> bool:
        """It was its webhook's circuit probe."""
        ...


class AttemptRow(Protocol):
    """One attempt as ``delivery_attempts`` stores it."""

    @property
    def number(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def response_body(self) -> str | None: ...


class Finished(Protocol):
    """A finished attempt and the transition it asks for."""

    @property
    def delivery(self) -> ClaimedRow: ...
    @property
    def attempt(self) -> AttemptRow: ...
    @property
    def status(self) -> str:
        """``delivered``, ``pending`` (try again at ``next_attempt_at``) or ``failed``."""
        ...

    @property
    def next_attempt_at(self) -> datetime | None: ...
    @property
    def reason(self) -> str | None:
        """The ``last_error`` to record (``None`` when delivered)."""
        ...

    @property
    def finished_at(self) -> datetime: ...
    @property
    def paused_until(self) -> datetime | None:
        """Pause the whole webhook until then (a 429 or 503 with ``Retry-After``), or ``None``."""
        ...

    @property
    def circuit_failed(self) -> bool:
        """The attempt counts against the webhook's circuit (timeout, connection error, 5xx, or
        429 without ``Retry-After``)."""
        ...


@dataclass(frozen=True, slots=True)
class ClockUpdate:
    """What a batch says about one webhook's health (see :func:`clock_updates`)."""

    subscriber_uuid: UUID
    success_at: datetime | None
    failure_since: datetime | None
    last_reason: str | None


@dataclass(frozen=True, slots=True)
class FailingWebhook:
    """An enabled webhook this batch saw failing, with its failure clock after the write."""

    subscriber_uuid: UUID
    failing_since: datetime
    last_reason: str | None


@dataclass
class Completed:
    """What :func:`complete` wrote."""

    counts: Counter[str]
    """Per final delivery status, plus ``stale`` for completions that changed nothing."""
    failing: list[FailingWebhook] = field(default_factory=list)
    applied: dict[UUID, str] = field(default_factory=dict)
    """The deliveries this batch changed, with their status after the write (stale ones absent)."""
    circuits: list[CircuitChange] = field(default_factory=list)
    """The webhooks' circuits this batch opened or closed."""


def clock_updates(batch: Iterable[Finished]) -> list[ClockUpdate]:
    """Summarize a batch per webhook subscriber: its latest success, and the first failure after it.

    ``failure_since`` is the start of the earliest failed attempt that finished after the
    batch's latest success (or of any failed attempt when the batch has no success).
    """
    by_subscriber: dict[UUID, list[Finished]] = {}
    for finished in batch:
        if finished.delivery.subscriber_kind == SubscriberKind.WEBHOOK:
            by_subscriber.setdefault(finished.delivery.subscriber_uuid, []).append(finished)
    updates: list[ClockUpdate] = []
    for subscriber_uuid, items in sorted(by_subscriber.items()):
        successes = [f.finished_at for f in items if f.status == DeliveryStatus.DELIVERED]
        success_at = max(successes, default=None)
        failures = [
            f
            for f in items
            if f.status != DeliveryStatus.DELIVERED and (success_at is None or f.finished_at > success_at)
        ]
        first = min(failures, key=lambda f: f.attempt.started_at, default=None)
        last = max(failures, key=lambda f: f.finished_at, default=None)
        updates.append(
            ClockUpdate(
                subscriber_uuid=subscriber_uuid,
                success_at=success_at,
                failure_since=first.attempt.started_at if first else None,
                last_reason=last.reason if last else None,
            )
        )
    return updates


def _delivery_params(batch: Sequence[Finished]) -> dict[str, list[object]]:
    return {
        "uuids": [f.delivery.uuid for f in batch],
        "tokens": [f.delivery.lease_token for f in batch],
        "subscribers": [f.delivery.subscriber_uuid for f in batch],
        "statuses": [f.status for f in batch],
        "attempts": [f.attempt.number for f in batch],
        "next_at": [f.next_attempt_at for f in batch],
        "errors": [f.reason for f in batch],
        "finished": [f.finished_at for f in batch],
    }


def _attempt_params(batch: Sequence[Finished]) -> dict[str, list[object]]:
    return {
        "uuids": [f.delivery.uuid for f in batch],
        "numbers": [f.attempt.number for f in batch],
        "started": [f.attempt.started_at for f in batch],
        "durations": [f.attempt.duration_ms for f in batch],
        "codes": [f.attempt.status_code for f in batch],
        "errors": [f.attempt.error for f in batch],
        "bodies": [f.attempt.response_body for f in batch],
    }


async def _move_failure_clock(session: AsyncSession, batch: Sequence[Finished]) -> list[FailingWebhook]:
    clock = clock_updates(batch)
    if not clock:
        return []
    params = {
        "uuids": [u.subscriber_uuid for u in clock],
        "success": [u.success_at for u in clock],
        "failure": [u.failure_since for u in clock],
    }
    reasons = {u.subscriber_uuid: u.last_reason for u in clock if u.failure_since is not None}
    return [
        FailingWebhook(row.uuid, row.failing_since, reasons[row.uuid])
        for row in await session.execute(queries.MOVE_FAILURE_CLOCK, params)
        if row.uuid in reasons and row.enabled and row.failing_since is not None
    ]


async def _pause_webhooks(session: AsyncSession, batch: Sequence[Finished]) -> None:
    until: dict[UUID, datetime] = {}
    for f in batch:
        if f.paused_until is not None and f.delivery.subscriber_kind == SubscriberKind.WEBHOOK:
            subscriber = f.delivery.subscriber_uuid
            until[subscriber] = max(until.get(subscriber, f.paused_until), f.paused_until)
    if until:
        await session.execute(queries.PAUSE_WEBHOOKS, {"uuids": list(until), "until": list(until.values())})


def _circuit_attempts(batch: Iterable[Finished]) -> dict[UUID, list[CircuitAttempt]]:
    # Every webhook attempt counts, stale ones too: the request did happen.
    attempts: dict[UUID, list[CircuitAttempt]] = {}
    for f in batch:
        if f.delivery.subscriber_kind == SubscriberKind.WEBHOOK:
            attempt = CircuitAttempt(f.finished_at, f.circuit_failed, f.delivery.probe)
            attempts.setdefault(f.delivery.subscriber_uuid, []).append(attempt)
    return attempts


async def complete(
    session: AsyncSession, batch: Sequence[Finished], *, circuit: CircuitPolicy, now: datetime
) -> Completed:
    """Write a batch of finished attempts in the session's transaction (never commits).

    Updates the deliveries still held under their lease, records every attempt, moves the
    webhooks' failure clock (``last_success_at`` to within a second) and their circuits
    (``circuit``), and returns, besides the counts, the enabled webhooks still failing after
    this batch and the circuits that opened or closed.
    """
    subscribers = sorted({f.delivery.subscriber_uuid for f in batch})
    # Subscriber rows first, in one order: a concurrent disable or delete then either sees this
    # batch's requeued rows or is seen by it, and two replicas' flushes cannot deadlock.
    locked = (await session.execute(queries.LOCK_SUBSCRIBERS, {"uuids": subscribers})).all()
    applied = (await session.execute(queries.COMPLETE, _delivery_params(batch))).all()
    await _pause_webhooks(session, batch)
    await session.execute(queries.INSERT_ATTEMPTS, _attempt_params(batch))
    counts: Counter[str] = Counter(row.status for row in applied)
    counts["stale"] = len(batch) - len(applied)
    failing = await _move_failure_clock(session, batch)
    circuits = await move_circuits(session, locked, _circuit_attempts(batch), circuit, now)
    return Completed(counts, failing, {row.uuid: row.status for row in applied}, circuits)
