"""Retention: remove what is older than ``HERALD_RETENTION_DAYS``, a little at a time.

Finished deliveries (``delivered``, ``cancelled``, ``failed``) whose last change is older than the
window go with their attempts (``ON DELETE CASCADE``); then events received before the window that
no delivery references any more. ``pending`` and ``delivering`` deliveries are never removed, nor
the events they reference.

Every batch is its own short transaction of at most ``batch_rows`` rows, followed by a short
pause: one giant ``DELETE`` would hold locks, bloat WAL and stall ingest and the dispatcher for
minutes on a large table. Each batch takes a transaction-level advisory lock first, so replicas
sharing the database never purge at the same time (the one that finds the lock taken stops its
run). :class:`RetentionJob` runs a purge periodically as a lifespan task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.background import Worker
from service.metrics import Metrics

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of the retention job ("retain" in ASCII); distinct from migrations'.
RETENTION_LOCK_KEY = 0x72_65_74_61_69_6E
BATCH_ROWS = 1000
BATCH_PAUSE_S = 0.05
INTERVAL_S = 600.0
FIRST_RUN_DELAY_S = 60.0
STOP_TIMEOUT_S = 5.0

_LOCK_SQL = text("SELECT pg_try_advisory_xact_lock(:key)")
_CUTOFF_SQL = text("SELECT now() - make_interval(secs => :window_s)")

# Served by the partial index ix_deliveries_retention (migration 0004). SKIP LOCKED: a delivery
# that someone is redelivering right now is left for the next run.
_DELIVERIES_SQL = text(
    """
WITH doomed AS (
    SELECT uuid FROM deliveries
    WHERE status IN ('delivered', 'cancelled', 'failed') AND updated_at < :cutoff
    LIMIT :batch_rows
    FOR UPDATE SKIP LOCKED
)
DELETE FROM deliveries d USING doomed WHERE d.uuid = doomed.uuid
"""
)

# Events are walked in ingest order (seq, unique index) rather than through an index on
# received_at, which ingest would pay for on every insert; received_at follows seq closely, and
# the walk stops at the first batch that reaches the window.
_EVENTS_SQL = text(
    """
WITH scanned AS (
    SELECT uuid, seq, received_at FROM events WHERE seq > :after_seq ORDER BY seq LIMIT :batch_rows
), deleted AS (
    DELETE FROM events e USING scanned s
    WHERE e.uuid = s.uuid AND s.received_at < :cutoff
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_uuid = s.uuid)
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted) AS deleted,
       (SELECT max(seq) FROM scanned) AS last_seq,
       (SELECT coalesce(bool_or(received_at >= :cutoff), false) FROM scanned) AS reached_window
"""
)


@dataclass
class PurgeResult:
    deliveries: int = 0
    events: int = 0
    batches: int = 0
    skipped: bool = False  # another replica holds the lock


class _LockTaken(Exception):
    pass


async def _locked(conn: AsyncConnection) -> None:
    if not (await conn.execute(_LOCK_SQL, {"key": RETENTION_LOCK_KEY})).scalar():
        raise _LockTaken


async def purge_expired(
    engine: AsyncEngine,
    retention_days: float,
    *,
    batch_rows: int = BATCH_ROWS,
    pause_s: float = BATCH_PAUSE_S,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
) -> PurgeResult:
    """Remove expired deliveries (with their attempts), then unreferenced expired events.

    Bounded batches of ``batch_rows`` rows, one transaction each, ``pause_s`` apart; returns
    early when ``stop`` is set or another replica is purging.
    """
    result = PurgeResult()
    stop = stop or asyncio.Event()
    async with engine.connect() as conn:
        cutoff: datetime = (
            await conn.execute(_CUTOFF_SQL, {"window_s": retention_days * 86400.0})
        ).scalar_one()
        await conn.commit()
        try:
            while not stop.is_set():
                async with conn.begin():
                    await _locked(conn)
                    deleted = (
                        await conn.execute(_DELIVERIES_SQL, {"cutoff": cutoff, "batch_rows": batch_rows})
                    ).rowcount
                result.batches += 1
                result.deliveries += deleted
                if metrics is not None:
                    metrics.retention_deleted("deliveries", deleted)
                if deleted < batch_rows:
                    break
                await asyncio.sleep(pause_s)
            after_seq = 0
            while not stop.is_set():
                async with conn.begin():
                    await _locked(conn)
                    row = (
                        await conn.execute(
                            _EVENTS_SQL, {"cutoff": cutoff, "batch_rows": batch_rows, "after_seq": after_seq}
                        )
                    ).one()
                result.batches += 1
                result.events += row.deleted
                if metrics is not None:
                    metrics.retention_deleted("events", row.deleted)
                if row.last_seq is None or row.reached_window:
                    break
                after_seq = row.last_seq
                if row.deleted:
                    await asyncio.sleep(pause_s)
        except _LockTaken:
            result.skipped = True
    return result


class RetentionJob(Worker):
    """Runs :func:`purge_expired` every ``interval_s`` until stopped (a lifespan task)."""

    # Stopping waits for the batch in progress (a batch is short), then cancels.
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(
        self,
        engine: AsyncEngine,
        retention_days: float,
        *,
        metrics: Metrics | None = None,
        interval_s: float = INTERVAL_S,
        first_run_delay_s: float = FIRST_RUN_DELAY_S,
        batch_rows: int = BATCH_ROWS,
        pause_s: float = BATCH_PAUSE_S,
    ) -> None:
        super().__init__("retention")
        self.engine = engine
        self.retention_days = retention_days
        self.metrics = metrics
        self.interval_s = interval_s
        self.first_run_delay_s = first_run_delay_s
        self.batch_rows = batch_rows
        self.pause_s = pause_s
        self.runs = 0

    async def run(self) -> None:
        """Purge every ``interval_s`` (the first time after ``first_run_delay_s``) until stopped."""
        # Jitter the first run so replicas started together do not all try at once.
        delay_s = self.first_run_delay_s * (1 + random.random() / 2)
        while await self._pause(delay_s):
            try:
                result = await purge_expired(
                    self.engine,
                    self.retention_days,
                    batch_rows=self.batch_rows,
                    pause_s=self.pause_s,
                    stop=self._stop_event,
                    metrics=self.metrics,
                )
            except Exception as exc:  # the database may be away; try again next time
                logger.warning("retention run failed: %s", type(exc).__name__)
            else:
                self.runs += 1
                if result.deliveries or result.events:
                    logger.info(
                        "retention removed expired rows",
                        extra={
                            "deliveries": result.deliveries,
                            "events": result.events,
                            "batches": result.batches,
                        },
                    )
            delay_s = self.interval_s
