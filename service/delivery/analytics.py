"""Batch deliverers: subscriber kinds whose deliveries travel many per request (the analytics one).

The dispatcher sends ``webhook`` deliveries one request each (:mod:`service.delivery.webhook`).
Any other subscriber kind is served by a :class:`BatchDeliverer` registered for it in a
:class:`BatchDeliverers` mapping given to the dispatcher: the dispatcher claims up to
``max_batch`` due deliveries of that kind, calls :meth:`BatchDeliverer.deliver` once, and
treats the one :class:`~service.delivery.webhook.AttemptRecord` it returns as the attempt of
every delivery in the batch (retry schedule, ``Retry-After`` and outcome writing as for
webhooks; a 410 fails the batch without disabling anything).

The PostHog ``/batch/`` body is the telemetry issue's: it implements this protocol and
registers it for ``"analytics"`` while telemetry is on. With nothing registered for a kind,
its deliveries are never claimed (telemetry off creates none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from service.delivery.claims import ClaimedDelivery
from service.delivery.webhook import AttemptRecord

ANALYTICS_KIND = "analytics"


class BatchDeliverer(Protocol):
    """Sends many deliveries of one subscriber kind in one request."""

    @property
    def max_batch(self) -> int:
        """The most deliveries one :meth:`deliver` call takes (e.g. ``HERALD_TELEMETRY_BATCH_SIZE``)."""
        ...

    @property
    def flush_interval_s(self) -> float:
        """How long to wait for a batch to fill before sending a partial one (0: send at once)."""
        ...

    async def deliver(self, deliveries: Sequence[ClaimedDelivery], *, attempt_number: int) -> AttemptRecord:
        """Send ``deliveries`` (their ``payload`` is the stored JSON text) in one request.

        Must not raise for a failed request: report it in the returned record (``status_code``
        ``None`` and an ``error`` for no answer). ``attempt_number`` is the highest attempt
        number of the batch, for the record; each delivery's own number is kept when written.
        """
        ...


BatchDeliverers = Mapping[str, BatchDeliverer]
"""Deliverers by subscriber kind, e.g. ``{"analytics": PostHogDeliverer(...)}``."""
