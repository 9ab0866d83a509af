"""The telemetry heartbeat: one ``heartbeat-trigger`` per interval per installation.

Every ``HERALD_HEARTBEAT_INTERVAL_SECONDS`` an installation sends ``{"active": bool}``: true
when its API served a request other than a probe or a scrape within the last half interval.

Replicas share the work without talking to each other. Time is cut into intervals ("slots")
on the wall clock, shifted by a phase drawn from the installation id (installations do not
all report at the same second). At each slot boundary every replica

1. reports its own last API activity to the ``telemetry_heartbeats`` row, when it falls in
   the half interval just ended (each replica only sees its own requests), then, after a
   short grace for the others to do the same,
2. tries to claim the slot: an upsert that succeeds only if the row's ``last_slot_start`` is
   older than this slot. The one replica that succeeds queues the heartbeat (through
   :func:`~service.core.analytics.send_event`) in the same transaction.

So each slot is sent at most once, by whichever replica gets there first; slot starts only
grow, so a changed interval never blocks the next heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.background import Worker
from service.common.telemetry import TelemetryData
from service.core.analytics import Event, send_event

logger = logging.getLogger(__name__)

MAX_GRACE_S = 2.0
PHASE_BUCKETS = 10_000

_REPORT_ACTIVITY_SQL = text(
    """
INSERT INTO telemetry_heartbeats AS t (id, last_active_at) VALUES (1, :active_at)
ON CONFLICT (id) DO UPDATE
SET last_active_at = greatest(t.last_active_at, EXCLUDED.last_active_at)
"""
)

# Returns a row only to the replica that takes the slot; the row lock serializes the others.
_CLAIM_SLOT_SQL = text(
    """
INSERT INTO telemetry_heartbeats AS t (id, last_slot_start, last_sent_at) VALUES (1, :slot_start, now())
ON CONFLICT (id) DO UPDATE
SET last_slot_start = EXCLUDED.last_slot_start, last_sent_at = EXCLUDED.last_sent_at
WHERE t.last_slot_start IS NULL OR t.last_slot_start < EXCLUDED.last_slot_start
RETURNING t.last_active_at
"""
)


def _utc(timestamp_s: float) -> datetime:
    return datetime.fromtimestamp(timestamp_s, UTC)


class Heartbeat(Worker):
    """Sends the heartbeat while telemetry is on; ``start()`` and ``stop()`` from the lifespan.

    Stopping cancels at once: a beat in progress is abandoned (its transaction rolls back).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval_s: float,
        installation_id: UUID,
        analytics_subscriber_uuid: UUID,
        last_activity: Callable[[], float | None],
    ) -> None:
        """``last_activity`` gives the ``time.monotonic()`` of this replica's last API request."""
        super().__init__("heartbeat")
        self._sessions = sessions
        self.interval_s = interval_s
        self._subscriber = analytics_subscriber_uuid
        self._last_activity = last_activity
        self.phase_s = (installation_id.int % PHASE_BUCKETS) / PHASE_BUCKETS * interval_s
        self.grace_s = min(interval_s / 10, MAX_GRACE_S)
        self.sent = 0
        self._last_slot_start = -math.inf

    def next_slot_start(self, now_s: float) -> float:
        """The wall-clock start (Unix seconds) of the first slot after ``now_s`` not yet beaten."""
        index = math.floor((now_s - self.phase_s) / self.interval_s) + 1
        start = self.phase_s + index * self.interval_s
        if start <= self._last_slot_start:
            start = self._last_slot_start + self.interval_s
        return start

    def _local_activity_s(self) -> float | None:
        """This replica's last API activity as Unix seconds (or None: none since start)."""
        last = self._last_activity()
        if last is None:
            return None
        return time.time() - (time.monotonic() - last)

    async def run(self) -> None:
        """Beat at every slot boundary until stopped."""
        while True:
            slot_start = self.next_slot_start(time.time())
            if not await self._pause(max(0.0, slot_start - time.time())):
                return
            self._last_slot_start = slot_start
            try:
                await self.beat(slot_start)
            except Exception as exc:
                # The database may be away for a while: that slot is lost, the next one is not.
                logger.warning("heartbeat failed: %s", type(exc).__name__)

    async def beat(self, slot_start: float) -> bool:
        """Report activity, wait the grace, try to take the slot starting at ``slot_start``.

        Returns True when this replica took it and queued the ``heartbeat-trigger`` event.
        """
        window_start = slot_start - self.interval_s / 2
        local = self._local_activity_s()
        active_here = local is not None and local >= window_start
        if active_here and local is not None:
            async with self._sessions() as session, session.begin():
                await session.execute(_REPORT_ACTIVITY_SQL, {"active_at": _utc(local)})
        await asyncio.sleep(self.grace_s)
        async with self._sessions() as session, session.begin():
            row = (await session.execute(_CLAIM_SLOT_SQL, {"slot_start": _utc(slot_start)})).first()
            if row is None:
                return False
            reported: datetime | None = row.last_active_at
            active = active_here or (reported is not None and reported >= _utc(window_start))
            await send_event(
                session,
                Event.HEARTBEAT_TRIGGER,
                TelemetryData(event_properties={"active": active}, derived_properties={}),
                telemetry_enabled=True,
                analytics_subscriber_uuid=self._subscriber,
            )
        self.sent += 1
        logger.debug("heartbeat queued", extra={"active": active})
        return True
