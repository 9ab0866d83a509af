"""The dispatcher's delivery slots: what is in flight, and when a freed slot is worth a claim.

Two bounds: ``total`` slots for the process (``HERALD_DELIVERY_CONCURRENCY``) and
``per_subscriber`` for each subscriber (``HERALD_DELIVERY_PER_SUBSCRIBER_CONCURRENCY``). They are
applied when claiming: :meth:`Slots.bounds` says how many rows the next claim may take and how
many each subscriber already holds, so a claimed delivery is sent at once and a hanging endpoint
only ever holds its own slots.

Freed slots are refilled a few at a time: a claim costs PostgreSQL milliseconds, and one claim
per freed slot made that a cost per delivery (a healthy endpoint beside a hanging one, each claim
taking 1-2 rows). A freed slot is worth another claim only where the last claim was *cut*, i.e.
may have left due rows behind:

- a subscriber is cut when it was full before the claim (or held), or got every row it had
  room for; it is claimed for again once a quarter of its slots is free (at least one);
- the process is cut when the claim took as many rows as there were free slots (or there were
  none); it is claimed for again once a quarter of all slots is free (at least one).

While a claim runs its result is unknown, so the process counts as cut until it is reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

REFILL_FRACTION = 4
"""A cut subscriber (or process) is claimed for again once 1/4 of its slots is free."""


@dataclass(frozen=True, slots=True)
class ClaimBounds:
    """What one claim may take."""

    limit: int
    """Free slots in the process."""
    busy: dict[UUID, int]
    """Slots taken per subscriber; a held subscriber counts as full."""


class Slots:
    """Counts the deliveries in flight against both bounds and applies the refill rule."""

    def __init__(self, total: int, per_subscriber: int) -> None:
        self.total = total
        self.per_subscriber = per_subscriber
        self._in_use = 0
        self._busy: Counter[UUID] = Counter()
        # Subscribers that answered 410: not claimed for until that outcome (a disable) is written.
        self._held: Counter[UUID] = Counter()
        self._cut_subscribers: set[UUID] = set()
        self._cut_globally = False
        self._refill = max(1, per_subscriber // REFILL_FRACTION)
        self._global_refill = max(1, total // REFILL_FRACTION)

    @property
    def in_use(self) -> int:
        """Deliveries in flight."""
        return self._in_use

    @property
    def free(self) -> int:
        """Slots free in the process."""
        return self.total - self._in_use

    def by_subscriber(self) -> dict[UUID, int]:
        """Deliveries in flight per subscriber (subscribers with none left out)."""
        return dict(self._busy)

    def bounds(self) -> ClaimBounds | None:
        """What the next claim may take, or ``None`` when every slot is taken.

        Report the claim's result with :meth:`claimed`; until then any freed slot may matter.
        """
        self._cut_globally = True
        free = self.free
        if free <= 0:
            return None
        return ClaimBounds(free, dict(self._busy) | dict.fromkeys(self._held, self.per_subscriber))

    def claimed(self, bounds: ClaimBounds, subscribers: Sequence[UUID]) -> bool:
        """Take one slot per claimed delivery (``subscribers``: each one's subscriber).

        Returns whether another claim is worth making at once: slots freed while the claim ran
        went unnoticed.
        """
        taken = Counter(subscribers)
        self._cut_globally = len(subscribers) >= bounds.limit
        full = self.per_subscriber
        self._cut_subscribers = {s for s, n in bounds.busy.items() if n >= full}
        self._cut_subscribers |= {s for s, n in taken.items() if n >= full - bounds.busy.get(s, 0)}
        self._busy.update(taken)
        self._in_use += len(subscribers)
        return self.worth_claiming(self._cut_subscribers)

    def release(self, subscriber: UUID) -> bool:
        """Free the slot of a finished delivery; returns whether that makes a claim worth it."""
        self._in_use -= 1
        self._busy[subscriber] -= 1
        if self._busy[subscriber] <= 0:
            del self._busy[subscriber]
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
        """Whether enough slots are free where the last claim was cut to make another claim."""
        if self._cut_globally and self.free >= self._global_refill:
            return True
        limit = self.per_subscriber - self._refill
        return any(s in self._cut_subscribers and self._busy[s] <= limit for s in subscribers)
