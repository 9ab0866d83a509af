"""The dispatcher's delivery slots: what is in flight, each webhook's window, and when to claim.

Three bounds, applied when claiming: ``total`` slots for the process
(``HERALD_DELIVERY_CONCURRENCY``), ``per_subscriber`` for any one subscriber
(``HERALD_DELIVERY_PER_SUBSCRIBER_CONCURRENCY``), and each webhook's *window*, which is what
keeps a receiver that hangs from taking the others' slots (docs/delivery.md, "Fair share"):

- a webhook this process has not heard from lately may have :data:`INITIAL_WINDOW` in flight;
- each success that came fast (within a quarter of the timeout) widens its window by one, up to
  ``per_subscriber`` (so a healthy webhook's window doubles with each round of requests);
- each failure that counts against its circuit (a timeout, a refused connection, a 5xx) halves
  it, down to one;
- a window is forgotten (back to the initial one) once its webhook has had nothing in flight for
  :data:`WINDOW_MEMORY_S`.

:meth:`Slots.bounds` says how many rows the next claim may take, how many each subscriber
already holds and the windows, so a claimed delivery is sent at once and a hanging endpoint only
ever holds its own, few, slots.

Slots are refilled as they free, where the last claim was *cut* (may have left due rows
behind): a subscriber that was full before the claim (or held), or got every row it had room
for; the process, when the claim took as many rows as there were free slots (or there were
none). A claim costs PostgreSQL a millisecond or two whatever it takes, so freed slots are
gathered a little: a claim is made at once when a quarter of the slots there are free
(:meth:`Slots.release` says so), and, while requests take :data:`SLOW_REQUEST_S` or more (then
the slots, not the CPU, bound the rate), at most :data:`REFILL_DELAY_S` after the first one
freed (:meth:`Slots.refill_soon`). Against fast receivers each claim thus takes several rows
(claims per delivery cost CPU that the deliveries need); against slow ones (20 ms) no slot
waits long (refilling only at a quarter left 20 ms receivers at 72 % of what their slots allow). While a claim
runs its result is unknown, so the process counts as cut until it is reported.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

INITIAL_WINDOW = 1
"""What a webhook not heard from lately may have in flight in this process."""

WINDOW_MEMORY_S = 60.0
"""A window is forgotten once its webhook has had nothing in flight this long."""

REFILL_FRACTION = 4
"""A cut subscriber (or process) is claimed for at once when 1/4 of its slots is free."""

REFILL_DELAY_S = 0.002
"""Otherwise a freed slot where the last claim was cut is claimed for at most this much later."""

SLOW_REQUEST_S = 0.01
"""Requests this long on average (lately) make freed slots worth a claim within REFILL_DELAY_S."""

DURATION_WEIGHT = 0.05
"""The weight of each success in the running average of request durations."""

AHEAD_FRACTION = 1
"""While it is the only live dispatcher, a webhook with a window of ``w`` (4 or more: it answers)
may have ``w // AHEAD_FRACTION`` more deliveries claimed, waiting in the process to take a slot
the moment one frees (no claim in between); the process, ``total // AHEAD_FRACTION`` more in all.
A claim tops them up once half of them went: against one fast receiver (16 slots), claims of 8
rows instead of 4 halved the claims' cost, which is what an outage beside it adds to."""

FAST_FRACTION = 4
"""A success widens the window when it took less than 1/4 of the delivery timeout."""


@dataclass(frozen=True, slots=True)
class ClaimBounds:
    """What one claim may take."""

    limit: int
    """Free slots in the process."""
    busy: dict[UUID, int]
    """Slots taken per subscriber; a held subscriber counts as full."""
    windows: dict[UUID, int] = field(default_factory=dict)
    """The windows that are not the initial one."""


class Slots:
    """Counts the deliveries in flight against the bounds, keeps the windows, applies the refill rule."""

    def __init__(
        self,
        total: int,
        per_subscriber: int,
        *,
        timeout_s: float = 15.0,
        initial_window: int = INITIAL_WINDOW,
    ) -> None:
        self.total = total
        self.per_subscriber = per_subscriber
        self.initial_window = min(initial_window, per_subscriber)
        self._fast_s = timeout_s / FAST_FRACTION
        self._in_use = 0
        self._busy: Counter[UUID] = Counter()
        # Subscribers that answered 410: not claimed for until that outcome (a disable) is written.
        self._held: Counter[UUID] = Counter()
        self._windows: dict[UUID, int] = {}
        self._idle_since: dict[UUID, float] = {}
        self._cut_subscribers: set[UUID] = set()
        self._cut_globally = False
        self._global_refill = max(1, total // REFILL_FRACTION)
        self._duration_s = 0.0
        self._sending: Counter[UUID] = Counter()
        self._sending_total = 0
        self.ahead = False
        """Whether deliveries may be claimed ahead (set while no other dispatcher is live: the
        per-subscriber bound across replicas counts claimed deliveries)."""

    @property
    def in_use(self) -> int:
        """Deliveries claimed (in flight or waiting for a slot)."""
        return self._in_use

    @property
    def free(self) -> int:
        """Deliveries the process may still claim."""
        return self.total + (self.total // AHEAD_FRACTION if self.ahead else 0) - self._in_use

    @property
    def claim_bound(self) -> int:
        """The per-subscriber bound a claim applies (the bound, plus what may wait ahead)."""
        return self.per_subscriber + (self.per_subscriber // AHEAD_FRACTION if self.ahead else 0)

    def can_send(self, subscriber: UUID) -> bool:
        """Whether a claimed delivery of ``subscriber`` may be sent now (window and slots)."""
        within = self._sending[subscriber] < min(self.per_subscriber, self.window(subscriber))
        return within and self._sending_total < self.total

    def start(self, subscriber: UUID) -> None:
        """A claimed delivery of ``subscriber`` is being sent: it takes a slot."""
        self._sending[subscriber] += 1
        self._sending_total += 1

    def unclaim(self, subscriber: UUID) -> None:
        """A claimed delivery that was never sent went back to the queue."""
        self._in_use -= 1
        self._busy[subscriber] -= 1
        if self._busy[subscriber] <= 0:
            del self._busy[subscriber]

    def by_subscriber(self) -> dict[UUID, int]:
        """Deliveries in flight per subscriber (subscribers with none left out)."""
        return dict(self._busy)

    def window(self, subscriber: UUID) -> int:
        """How many deliveries of ``subscriber`` this process may have in flight now."""
        return self._windows.get(subscriber, self.initial_window)

    def bounds(self) -> ClaimBounds | None:
        """What the next claim may take, or ``None`` when every slot is taken.

        Report the claim's result with :meth:`claimed`; until then any freed slot may matter.
        """
        self._cut_globally = True
        free = self.free
        if free <= 0:
            return None
        self._forget_idle_windows()
        busy = dict(self._busy) | dict.fromkeys(self._held, self.claim_bound)
        return ClaimBounds(free, busy, {s: self._full(s) for s in self._windows})

    def claimed(self, bounds: ClaimBounds, subscribers: Sequence[UUID]) -> bool:
        """Take one slot per claimed delivery (``subscribers``: each one's subscriber).

        Returns whether another claim is worth making at once: slots freed while the claim ran
        went unnoticed.
        """
        taken = Counter(subscribers)
        self._cut_globally = len(subscribers) >= bounds.limit
        self._cut_subscribers = {s for s, n in bounds.busy.items() if n >= self._full(s)}
        self._cut_subscribers |= {s for s, n in taken.items() if n >= self._full(s) - bounds.busy.get(s, 0)}
        self._busy.update(taken)
        for subscriber in taken:
            self._idle_since.pop(subscriber, None)
        self._in_use += len(subscribers)
        return self.worth_claiming(self._cut_subscribers)

    def release(self, subscriber: UUID, *, duration_s: float | None = None, failed: bool = False) -> bool:
        """Free the slot of a finished delivery; returns whether that makes a claim worth it.

        ``duration_s`` (given for a success) and ``failed`` (a failure that counts against the
        circuit) move the subscriber's window.
        """
        self._in_use -= 1
        self._busy[subscriber] -= 1
        if self._busy[subscriber] <= 0:
            del self._busy[subscriber]
            self._idle_since[subscriber] = time.monotonic()
        self._sending_total -= 1
        self._sending[subscriber] -= 1
        if self._sending[subscriber] <= 0:
            del self._sending[subscriber]
        if duration_s is not None:
            self._duration_s += DURATION_WEIGHT * (duration_s - self._duration_s)
        window = self.window(subscriber)
        if failed:
            self._set_window(subscriber, max(1, window // 2))
        elif duration_s is not None and duration_s < self._fast_s:
            self._set_window(subscriber, min(self.per_subscriber, window + 1))
        return self.worth_claiming((subscriber,))

    def hold(self, subscriber: UUID) -> None:
        """Claim nothing for ``subscriber`` until :meth:`unhold` (as many times as held)."""
        self._held[subscriber] += 1

    def unhold(self, subscriber: UUID) -> None:
        """Undo one :meth:`hold`."""
        self._held[subscriber] -= 1
        if self._held[subscriber] <= 0:
            del self._held[subscriber]

    def worth_claiming(self, subscribers: Iterable[UUID]) -> bool:
        """Whether enough slots are free where the last claim was cut to claim at once."""
        if self._cut_globally and self.free >= self._global_refill:
            return True
        return any(
            s in self._cut_subscribers and self._busy[s] <= self._full(s) - self._refill(s)
            for s in subscribers
        )

    def refill_soon(self, subscriber: UUID) -> bool:
        """Whether a slot is free where the last claim was cut (``subscriber``'s or the process's):
        worth a claim within :data:`REFILL_DELAY_S` (while requests are slow)."""
        if self._duration_s < SLOW_REQUEST_S:
            return False
        if self._cut_globally and self.free > 0:
            return True
        return subscriber in self._cut_subscribers and self._busy[subscriber] < self._full(subscriber)

    def _ahead(self, subscriber: UUID) -> int:
        window = min(self.per_subscriber, self.window(subscriber))
        return window // AHEAD_FRACTION if self.ahead and window >= 4 else 0

    def _full(self, subscriber: UUID) -> int:
        # What it may have claimed: its window, plus what may wait ahead.
        return min(self.per_subscriber, self.window(subscriber)) + self._ahead(subscriber)

    def _refill(self, subscriber: UUID) -> int:
        # With deliveries waiting ahead, claim again once half of them went.
        ahead = self._ahead(subscriber)
        return max(1, ahead // 2 if ahead else self._full(subscriber) // REFILL_FRACTION)

    def _set_window(self, subscriber: UUID, window: int) -> None:
        if window == self.initial_window:
            self._windows.pop(subscriber, None)
        else:
            self._windows[subscriber] = window

    def _forget_idle_windows(self) -> None:
        if not self._idle_since:
            return
        limit = time.monotonic() - WINDOW_MEMORY_S
        for subscriber in [s for s, at in self._idle_since.items() if at < limit]:
            del self._idle_since[subscriber]
            self._windows.pop(subscriber, None)
