"""Batching outcomes: completions are queued as attempts end and written together.

One background task flushes the queue in one transaction (:func:`write_completions`) when
enough completions are queued or a few milliseconds have passed, instead of one transaction
per delivery. A database outage is waited out (with backoff, nothing dropped); a batch that
keeps failing for another reason is written one by one and the poison completion dropped
(its lease expires and the delivery is sent again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.background import Worker
from service.db import is_database_unavailable
from service.delivery.backoff import backoff_s
from service.delivery.outcomes import Completion, write_completions
from service.outbox import CircuitPolicy

logger = logging.getLogger(__name__)

FLUSH_MAX_ITEMS = 500
FLUSH_MAX_DELAY_S = 0.01
POISON_RETRIES = 3
FLUSH_ON_STOP_S = 5.0


def _written(batch: Iterable[Completion]) -> None:
    for completion in batch:
        if completion.on_written is not None:
            completion.on_written()


class OutcomeWriter(Worker):
    """Queues completions and writes them in batches from one background task.

    ``stop()`` writes what is queued first, for at most ``stop_timeout_s``.
    """

    stop_timeout_s = FLUSH_ON_STOP_S

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        disable_after_s: float,
        failing_after_attempts: int,
        counters: Counter[str],
        max_items: int = FLUSH_MAX_ITEMS,
        max_delay_s: float = FLUSH_MAX_DELAY_S,
        circuit: CircuitPolicy | None = None,
    ) -> None:
        super().__init__("outcomes")
        self._sessions = sessions
        self._disable_after_s = disable_after_s
        self._failing_after_attempts = failing_after_attempts
        self._counters = counters
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._queue: list[Completion] = []
        # Something waits for a queued completion (an ordered webhook's next run, a pause): no delay.
        self._urgent = False
        self._circuit = circuit or CircuitPolicy()

    @property
    def queued(self) -> int:
        """Completions not written yet."""
        return len(self._queue)

    def put(self, completion: Completion) -> None:
        """Queue one completion; it is written within a few milliseconds, at once when something
        waits for it (``on_written``)."""
        self._queue.append(completion)
        self._urgent = self._urgent or completion.on_written is not None
        self.wake()

    async def run(self) -> None:
        """Flush until stopped and the queue is empty; database errors are retried with backoff."""
        failures = 0
        while True:
            if not self._queue:
                if self.stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._queue) < self._max_items and not self.stopping and not self._urgent:
                # Let more outcomes join this transaction.
                await asyncio.sleep(self._max_delay_s)
            batch, self._queue = self._queue[: self._max_items], self._queue[self._max_items :]
            self._urgent = any(c.on_written is not None for c in self._queue)
            try:
                await self._write(batch)
                failures = 0
            except Exception as exc:
                failures += 1
                if is_database_unavailable(exc) or failures < POISON_RETRIES:
                    logger.warning("writing outcomes failed, retrying: %s", type(exc).__name__, exc_info=True)
                    self._queue[:0] = batch
                    # Not cut short by stop: the flush on stop must not hammer an absent database.
                    await asyncio.sleep(backoff_s(failures))
                else:
                    await self._write_one_by_one(batch)
                    failures = 0

    async def stop(self, timeout_s: float | None = None) -> bool:
        """Write everything queued (waiting at most ``timeout_s``) and stop; False if some was left."""
        return await super().stop(timeout_s) and not self._queue

    async def _write(self, batch: Sequence[Completion]) -> None:
        async with self._sessions() as session, session.begin():
            counts = await write_completions(
                session,
                batch,
                disable_after_s=self._disable_after_s,
                failing_after_attempts=self._failing_after_attempts,
                now=datetime.now(UTC),
                circuit=self._circuit,
            )
        self._counters.update(counts)
        _written(batch)

    async def _write_one_by_one(self, batch: Sequence[Completion]) -> None:
        # A batch failing for a reason other than the database being away: find the poison
        # completion and drop it (its lease expires and the delivery is sent again).
        for completion in batch:
            try:
                await self._write([completion])
            except Exception:
                logger.exception(
                    "dropping an outcome that cannot be written",
                    extra={"delivery": str(completion.delivery.uuid)},
                )
                self._counters["outcomes_dropped"] += 1
                _written([completion])
