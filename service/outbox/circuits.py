"""The circuit breaker of each webhook: ``closed`` → ``open`` → ``half-open`` → ``closed`` or ``open``.

The state is four columns of ``subscribers`` (migration 0019), so every replica honours it:

- ``closed``: deliveries go as usual; ``circuit_failures`` counts the failed attempts in a row
  (timeout, connection error, 5xx, or 429 without ``Retry-After``: the caller says which).
  Reaching :attr:`CircuitPolicy.failures` opens it.
- ``open``: no claim takes a delivery of the webhook; the claims park its rows out of their walk
  (``deliveries.throttled``), so an open circuit costs them nothing. At ``circuit_next_probe_at``
  one claim takes one delivery, the probe, and makes it ``half-open``.
- ``half-open``: the probe is in flight (``circuit_next_probe_at`` is then its deadline: a probe
  whose outcome never comes, its process gone, is taken again then). Its success closes the
  circuit; its failure opens it again, the next probe waiting twice as long (at most
  :attr:`CircuitPolicy.probe_max_s`).

Any success closes the circuit, whatever the state: the receiver answers. The claim side (taking
the probe, parking rows) is in ``CLAIM_WEBHOOKS``; this module moves the state after attempts, in
the outcome writer's transaction (the subscriber rows are locked by then), and closes a circuit
when its webhook is enabled. The transitions it returns are what ``herald:subscriber:circuit-*``
events report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.outbox import queries

CircuitState = Literal["closed", "open", "half-open"]
CLOSED: CircuitState = "closed"
OPEN: CircuitState = "open"
HALF_OPEN: CircuitState = "half-open"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When a circuit opens and how long its probes wait (``HERALD_CIRCUIT_*``)."""

    failures: int = 5
    probe_s: float = 5.0
    probe_max_s: float = 300.0

    def probe_wait_s(self, failed_probes: int) -> float:
        """The wait before the next probe after ``failed_probes`` failed ones since it opened."""
        doubled_s: float = self.probe_s * 2.0 ** min(failed_probes, 32)
        return min(doubled_s, self.probe_max_s)


@dataclass(frozen=True, slots=True)
class Circuit:
    """One webhook's circuit as stored."""

    state: CircuitState
    since: datetime | None
    next_probe_at: datetime | None
    failures: int
    probes: int
    """Failed probes since it opened."""


@dataclass(frozen=True, slots=True)
class CircuitAttempt:
    """What one finished attempt says to its webhook's circuit."""

    finished_at: datetime
    failed: bool
    """Timeout, connection error, 5xx, or 429 without ``Retry-After``."""
    probe: bool
    """It was the half-open circuit's probe."""


Transition = Literal["opened", "closed"]


def advance(
    circuit: Circuit, attempts: Iterable[CircuitAttempt], policy: CircuitPolicy, now: datetime
) -> tuple[Circuit, Transition | None]:
    """The circuit after ``attempts`` (taken in the order they finished), and whether it opened
    (from closed) or closed on the way: the last of the two, ``None`` if neither or both undone."""
    transition: Transition | None = None
    for attempt in sorted(attempts, key=lambda a: a.finished_at):
        if not attempt.failed:
            if circuit.state != CLOSED:
                circuit = Circuit(CLOSED, now, None, 0, 0)
                transition = None if transition == "opened" else "closed"
            else:
                circuit = replace(circuit, failures=0)
            continue
        circuit = replace(circuit, failures=circuit.failures + 1)
        if circuit.state == CLOSED and circuit.failures >= policy.failures:
            circuit = Circuit(OPEN, now, now + timedelta(seconds=policy.probe_s), circuit.failures, 0)
            transition = None if transition == "closed" else "opened"
        elif circuit.state == HALF_OPEN and attempt.probe:
            probes = circuit.probes + 1
            wait_s = policy.probe_wait_s(probes)
            circuit = replace(
                circuit, state=OPEN, next_probe_at=now + timedelta(seconds=wait_s), probes=probes
            )
    return circuit, transition


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """A circuit that opened or closed in this transaction."""

    subscriber_uuid: UUID
    transition: Transition


def _stored(row: Any) -> Circuit:
    return Circuit(
        row.circuit_state,
        row.circuit_since,
        row.circuit_next_probe_at,
        row.circuit_failures,
        row.circuit_probes,
    )


async def move_circuits(
    session: AsyncSession,
    locked: Sequence[Any],
    attempts: dict[UUID, list[CircuitAttempt]],
    policy: CircuitPolicy,
    now: datetime,
) -> list[CircuitChange]:
    """Move the circuits of the webhooks in ``attempts`` (never commits).

    ``locked`` are their subscriber rows as ``LOCK_SUBSCRIBERS`` returned them (locked in this
    transaction). Only circuits that changed are written; a circuit that closed gets its parked
    rows back into the claims' walk, and the dispatchers are woken. Returns the transitions.
    """
    changed: dict[UUID, Circuit] = {}
    changes: list[CircuitChange] = []
    closed: list[UUID] = []
    for row in locked:
        mine = attempts.get(row.uuid)
        if row.kind != "webhook" or not mine:
            continue
        before = _stored(row)
        after, transition = advance(before, mine, policy, now)
        if after != before:
            changed[row.uuid] = after
        if transition is not None:
            changes.append(CircuitChange(row.uuid, transition))
        if before.state != CLOSED and after.state == CLOSED:
            closed.append(row.uuid)
    if changed:
        await session.execute(
            queries.MOVE_CIRCUITS,
            {
                "uuids": list(changed),
                "states": [c.state for c in changed.values()],
                "since": [c.since for c in changed.values()],
                "next_probe_at": [c.next_probe_at for c in changed.values()],
                "failures": [c.failures for c in changed.values()],
                "probes": [c.probes for c in changed.values()],
            },
        )
    if closed:
        await _release_parked(session, closed)
    return changes


async def _release_parked(session: AsyncSession, subscribers: list[UUID]) -> None:
    # Back to the walk, which claims them (or parks them again under a rate limit), now.
    for statement in queries.UNPARK_CIRCUITS:
        await session.execute(statement, {"uuids": subscribers})


async def close_circuit(session: AsyncSession, subscriber_uuid: UUID) -> bool:
    """Close the webhook's circuit (it is being enabled); returns whether it was not closed.

    Never commits. Its parked rows go back to the claims' walk.
    """
    row = (await session.execute(queries.CLOSE_CIRCUIT, {"uuid": subscriber_uuid})).first()
    if row is None or not row.was_open:
        return False
    await _release_parked(session, [subscriber_uuid])
    return True
