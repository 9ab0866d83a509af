"""The loop of one batch deliverer (e.g. analytics): claim a batch of one kind, send it, record it.

Runs beside the webhook loop inside the :class:`~service.delivery.dispatcher.Dispatcher`,
woken by the same notifications, with one request in flight at a time. Outcomes go through
the same retry decision and outcome writer as webhooks.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service import outbox
from service.background import Worker
from service.config import Settings
from service.db import is_database_unavailable
from service.delivery import claims
from service.delivery.analytics import BatchDeliverer
from service.delivery.backoff import backoff_s
from service.delivery.outcomes import AttemptObserver, AttemptOutcome, completion_of
from service.delivery.webhook import AttemptRecord
from service.delivery.writer import OutcomeWriter

logger = logging.getLogger(__name__)


class BatchRunner(Worker):
    """Delivers the deliveries of subscriber kind ``kind`` through ``deliverer``, many per request.

    Stopping lets the request in flight finish (the dispatcher gives it its shutdown grace).
    """

    def __init__(
        self,
        kind: str,
        deliverer: BatchDeliverer,
        *,
        engine: AsyncEngine,
        settings: Settings,
        writer: OutcomeWriter,
        counters: Counter[str],
        observer: AttemptObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self._deliverer = deliverer
        self._engine = engine
        self._settings = settings
        self._writer = writer
        self._counters = counters
        self._observer = observer
        self._rng = rng or random.Random()
        self._current: list[claims.ClaimedDelivery] = []

    def unfinished(self) -> list[claims.ClaimedDelivery]:
        """The claimed deliveries whose request has not completed."""
        return list(self._current)

    async def run(self) -> None:
        """Until stopped: wait for a wake-up or the poll, let a batch fill, send full batches in a row."""
        failures = 0
        while not self.stopping:
            await self._idle(self._settings.poll_interval_seconds)
            self._wakeup.clear()
            if self._deliverer.flush_interval_s > 0 and not self.stopping:
                await self._idle(self._deliverer.flush_interval_s)
            try:
                while not self.stopping and await self._send_one_batch():
                    pass
                failures = 0
            except Exception as exc:
                failures += 1
                logger.warning(
                    "claiming %s deliveries failed: %s",
                    self.kind,
                    type(exc).__name__,
                    exc_info=not is_database_unavailable(exc),
                )
                await self._pause(backoff_s(failures))

    async def _send_one_batch(self) -> bool:
        """Claim and send one batch; True when it was full (more may be due)."""
        limit = self._deliverer.max_batch
        lease_s = self._settings.lease_seconds
        claim = await outbox.claim_kind(self._engine, self.kind, limit=limit, lease_s=lease_s)
        batch = claims.kind_deliveries(claim, self.kind)
        if not batch:
            return False
        self._current = batch
        self._counters["claimed"] += len(batch)
        number = max(d.attempt_number for d in batch)
        try:
            record = await self._deliverer.deliver(batch, attempt_number=number)
        except Exception:
            logger.exception("%s deliverer crashed", self.kind)
            record = AttemptRecord(number, datetime.now(UTC), 0.0, None, "internal error", None)
        for delivery in batch:
            own = dataclasses.replace(record, number=delivery.attempt_number)
            waits = self._settings.retry_waits_seconds
            self._writer.put(completion_of(delivery, own, destination=self.kind, waits=waits, rng=self._rng))
        self._counters["attempts"] += len(batch)
        if self._observer is not None:
            result: AttemptOutcome = "success" if record.ok else "failure"
            # Batch deliverers are registered for the analytics kind only.
            self._observer.observe_attempt(record.duration_ms / 1000, result, "analytics")
        self._current = []
        return len(batch) >= limit
