"""The delivery loop: claim due deliveries, fan them out, write what happened, stop gracefully.

One :class:`Dispatcher` per process, started and stopped by the lifespan. Its state is
explicit: the deliveries in flight and their slots (:class:`~service.delivery.slots.Slots`:
the process and per-subscriber bounds, applied when claiming), a wake-up event (set by NOTIFY,
by a freed slot that may let more rows through, by stop), the outcome writer and the listener.
No database transaction is open during an HTTP call: claims and outcome batches are short
transactions of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service import outbox
from service.background import Worker, finish_or_cancel
from service.common.channels import DELIVERIES_CHANNEL
from service.common.secretbox import SecretBox
from service.common.urls import url_origin
from service.config import Settings
from service.db import is_database_unavailable
from service.delivery import claims
from service.delivery.analytics import BatchDeliverers
from service.delivery.backoff import backoff_s
from service.delivery.batches import BatchRunner
from service.delivery.connection import DedicatedConnection
from service.delivery.http import HttpClients
from service.delivery.listener import WakeupListener
from service.delivery.outcomes import AttemptObserver, completion_of
from service.delivery.retry import Gone
from service.delivery.slots import REFILL_DELAY_S, Slots
from service.delivery.webhook import AttemptRecord, send_attempt
from service.delivery.writer import OutcomeWriter

logger = logging.getLogger(__name__)

# How often pending rows left behind by a deleted or disabled subscriber are settled
# (``outbox.settle_orphans``); also once when the dispatcher starts.
ORPHAN_SWEEP_INTERVAL_S = 30.0

# A starting dispatcher waits this long at most (a poll interval if shorter) between announcing
# itself and its first claim, so that the others' claims see it and serialize with its own.
ANNOUNCE_MAX_WAIT_S = 1.0


@dataclass(frozen=True)
class DispatcherStats:
    """A snapshot for metrics: what is in flight and what happened so far."""

    in_flight: int
    in_flight_by_subscriber: dict[UUID, int]
    outcomes_queued: int
    listener_connected: bool
    listener_connections: int
    """How many times the listener connected (more than one: it reconnected)."""
    counters: dict[str, int]
    """``claimed``, ``attempts``, ``delivered``, ``pending`` (rescheduled), ``failed``, ``cancelled``,
    ``stale`` (lease lost), ``released_expired``, ``handed_back``, ``subscribers_disabled``..."""


class Dispatcher(Worker):
    """Claims due deliveries and delivers them; ``start()`` once, ``stop()`` once.

    Its own task is the claim loop; it starts and stops the outcome writer, the listener and
    the batch runners with it.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        database_url: str,
        clients: HttpClients,
        secrets: SecretBox,
        batch_deliverers: BatchDeliverers | None = None,
        observer: AttemptObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__("dispatcher")
        self._settings = settings
        self._engine = engine
        self._clients = clients
        self._secrets = secrets
        self._observer = observer
        self._rng = rng or random.Random()
        self.counters: Counter[str] = Counter()
        self._writer = OutcomeWriter(
            sessions,
            disable_after_s=settings.disable_after_seconds,
            failing_after_attempts=settings.failing_after_attempts,
            counters=self.counters,
            circuit=outbox.CircuitPolicy(
                settings.circuit_failures, settings.circuit_probe_seconds, settings.circuit_probe_max_seconds
            ),
        )
        self._listener = WakeupListener(database_url, DELIVERIES_CHANNEL, self.wake)
        self._claims_connection = DedicatedConnection(database_url, "herald-dispatcher")
        self._batches = [
            BatchRunner(
                kind,
                deliverer,
                engine=engine,
                settings=settings,
                writer=self._writer,
                counters=self.counters,
                observer=observer,
            )
            for kind, deliverer in (batch_deliverers or {}).items()
        ]
        self._in_flight: dict[UUID, tuple[claims.ClaimedDelivery, asyncio.Task[None]]] = {}
        # Claimed ahead, per webhook, each waiting for a slot of its window (docs/delivery.md,
        # "Slots"): sent the moment one frees, with no claim in between.
        self._waiting: dict[UUID, deque[claims.ClaimedDelivery]] = {}
        self._slots = Slots(
            settings.delivery_concurrency,
            settings.delivery_per_subscriber_concurrency,
            timeout_s=settings.delivery_timeout_seconds,
        )
        # Names this dispatcher's published in-flight counts (dispatcher_inflight).
        self.uuid = uuid4()
        # When a paused or rate-limited webhook with due rows opens again (the last claim said).
        self._wake_at: datetime | None = None
        self._published_at = float("-inf")
        # Another dispatcher is live (its counts are published): claims then serialize.
        self._others_live = True
        self._refill_timer: asyncio.TimerHandle | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop, the outcome writer, the listener and any batch deliverers."""
        if self._settings.lease_seconds <= self._settings.delivery_timeout_seconds:
            logger.warning(
                "HERALD_LEASE_SECONDS <= HERALD_DELIVERY_TIMEOUT_SECONDS: leases may expire mid-attempt"
            )
        self._writer.start()
        self._listener.start()
        super().start()
        for runner in self._batches:
            runner.start()
        logger.info(
            "dispatcher started",
            extra={"concurrency": self._slots.total, "per_subscriber": self._slots.per_subscriber},
        )

    def is_alive(self) -> bool:
        """Whether the loop, the outcome writer and the batch runners are running (``/health/ready``)."""
        workers = (self._writer, *self._batches)
        return super().is_alive() and all(worker.is_alive() for worker in workers)

    def wake(self) -> None:
        """Make the loop claim now (e.g. new deliveries were committed)."""
        super().wake()
        for runner in self._batches:
            runner.wake()

    async def stop(self, timeout_s: float | None = None) -> bool:
        """Stop claiming, let attempts in flight finish for ``timeout_s``, hand the rest back, flush.

        ``timeout_s`` defaults to ``HERALD_SHUTDOWN_GRACE_SECONDS``. Returns whether nothing was
        left to hand back or unwritten.
        """
        grace_s = self._settings.shutdown_grace_seconds if timeout_s is None else timeout_s
        for runner in self._batches:
            runner.request_stop()
        await super().stop(max(grace_s, 1.0))  # the loop ends after its current claim
        # Batch runners end after their request in flight, which gets the same grace.
        await asyncio.gather(
            finish_or_cancel([task for _, task in self._in_flight.values()], grace_s),
            *(runner.stop(grace_s) for runner in self._batches),
        )
        unfinished = [claimed for claimed, _ in self._in_flight.values()]
        unfinished += [c for waiting in self._waiting.values() for c in waiting]
        unfinished += [c for runner in self._batches for c in runner.unfinished()]
        flushed = await self._writer.stop()
        if not flushed:
            logger.warning(
                "outcomes left unwritten; their leases will expire", extra={"n": self._writer.queued}
            )
        if unfinished:
            try:
                handed_back = await outbox.hand_back(self._engine, unfinished)
                self.counters["handed_back"] += handed_back
            except Exception:
                logger.warning("handing back deliveries failed; their leases will expire", exc_info=True)
        await self._claims_connection.close()
        try:
            await outbox.withdraw_in_flight(self._engine, self.uuid)
        except Exception:
            logger.warning(
                "withdrawing the in-flight counts failed; they expire with the lease", exc_info=True
            )
        await self._listener.stop()
        logger.info("dispatcher stopped", extra={"handed_back": len(unfinished)})
        return flushed and not unfinished

    def stats(self) -> DispatcherStats:
        """Counters and in-flight figures for the metrics endpoint."""
        return DispatcherStats(
            in_flight=len(self._in_flight) + sum(len(r.unfinished()) for r in self._batches),
            # (Deliveries waiting ahead are claimed, not in flight.)
            in_flight_by_subscriber=self._slots.by_subscriber(),
            outcomes_queued=self._writer.queued,
            listener_connected=self._listener.connected,
            listener_connections=self._listener.connections,
            counters=dict(self.counters),
        )

    # -- the loop -----------------------------------------------------------------------------

    async def _announce(self) -> None:
        # Publish this dispatcher's (empty) counts and wait a poll interval before the first claim:
        # the others' claims meanwhile see it is live and serialize with its own from then on.
        try:
            async with self._claims_connection.use() as conn:
                await outbox.publish_in_flight(
                    conn, dispatcher=self.uuid, busy={}, lease_s=self._settings.lease_seconds
                )
        except Exception as exc:
            logger.warning("publishing the in-flight counts failed: %s", type(exc).__name__)
        await self._pause(min(self._settings.poll_interval_seconds, ANNOUNCE_MAX_WAIT_S))

    async def run(self) -> None:
        """Until stopped: release expired leases, settle orphans, claim and start deliveries."""
        loop = asyncio.get_running_loop()
        await self._announce()
        failures = 0
        released_at = swept_at = float("-inf")
        while not self.stopping:
            self._wakeup.clear()
            try:
                if loop.time() - released_at >= self._settings.poll_interval_seconds:
                    released_at = loop.time()
                    released = await outbox.release_expired(self._engine)
                    self.counters["released_expired"] += released
                if loop.time() - swept_at >= ORPHAN_SWEEP_INTERVAL_S:
                    swept_at = loop.time()
                    self.counters["settled_orphans"] += await outbox.settle_orphans(self._engine)
                    await outbox.sweep_expired_controls(self._engine)
                await self._claim()
                failures = 0
            except Exception as exc:
                failures += 1
                logger.warning(
                    "claiming deliveries failed: %s",
                    type(exc).__name__,
                    exc_info=not is_database_unavailable(exc),
                )
                # Not cut short by wake-ups: finishing attempts must not hammer a database that is away.
                await self._pause(backoff_s(failures))
                continue
            # The poll also picks up retries falling due and other replicas' released leases.
            await self._idle(self._idle_s())

    def _idle_s(self) -> float:
        poll_s = self._settings.poll_interval_seconds
        if self._wake_at is None:
            return poll_s
        return max(0.0, min(poll_s, (self._wake_at - datetime.now(UTC)).total_seconds()))

    async def _claim(self) -> None:
        # Alone, this dispatcher may claim ahead: the per-subscriber bound is its own to keep.
        self._slots.ahead = not self._others_live
        bounds = self._slots.bounds()
        lease_s = self._settings.lease_seconds
        now_s = asyncio.get_running_loop().time()
        if bounds is None:
            # Nothing to claim with (a freed slot wakes the loop), but the counts must stay
            # published while they are in flight: once a poll interval is enough.
            self._wake_at = None
            if now_s - self._published_at >= self._settings.poll_interval_seconds:
                self._published_at = now_s
                async with self._claims_connection.use() as conn:
                    self._others_live = await outbox.publish_in_flight(
                        conn, dispatcher=self.uuid, busy=self._slots.by_subscriber(), lease_s=lease_s
                    )
            return
        self._published_at = now_s
        async with self._claims_connection.use() as conn:
            claim = await outbox.claim_webhooks(
                conn,
                dispatcher=self.uuid,
                limit=bounds.limit,
                per_subscriber=self._slots.claim_bound,
                busy=bounds.busy,
                lease_s=lease_s,
                serialize=self._others_live,
                windows=bounds.windows,
                default_window=self._slots.initial_window,
            )
        self._wake_at = claim.wake_at
        self._others_live = claim.others_live
        claimed = claims.webhook_deliveries(claim, self._secrets)
        self.counters["claims"] += 1
        self.counters["claimed"] += len(claimed)
        runs: dict[UUID, list[claims.ClaimedDelivery]] = {}
        singles: list[claims.ClaimedDelivery] = []
        for delivery in claimed:
            if delivery.ordered and not delivery.probe:
                runs.setdefault(delivery.subscriber_uuid, []).append(delivery)
            else:
                singles.append(delivery)
        # A run has one request in flight at a time: it takes one slot.
        taken = [c.subscriber_uuid for c in singles] + [run[0].subscriber_uuid for run in runs.values()]
        worth = self._slots.claimed(bounds, taken)
        for delivery in singles:
            if delivery.probe or self._slots.can_send(delivery.subscriber_uuid):
                self._send(delivery)
            else:
                self._waiting.setdefault(delivery.subscriber_uuid, deque()).append(delivery)
        for run in runs.values():
            run.sort(key=lambda d: d.seq)
            self._slots.start(run[0].subscriber_uuid)
            task = asyncio.create_task(self._deliver_run(run))
            for delivery in run:
                self._in_flight[delivery.uuid] = (delivery, task)
        if worth:
            self._wakeup.set()
        elif any(self._slots.refill_soon(s) for s in set(taken)):
            self._wake_soon()

    def _send(self, delivery: claims.ClaimedDelivery) -> None:
        self._slots.start(delivery.subscriber_uuid)
        task = asyncio.create_task(self._deliver(delivery))
        self._in_flight[delivery.uuid] = (delivery, task)

    def _send_waiting(self, subscriber: UUID, *, answered: bool) -> None:
        # After an attempt of ``subscriber``: its deliveries waiting ahead take the free slots;
        # if it did not answer 2xx (a failure, a pause, a 410) they go back to the queue unsent,
        # attempts untouched. Others may wait for a slot of the process, too.
        waiting = self._waiting.get(subscriber)
        if waiting and not answered:
            rest = tuple(waiting)
            del self._waiting[subscriber]
            for _ in rest:
                self._slots.unclaim(subscriber)
            task = asyncio.create_task(self._hand_back_unsent(rest))
            for delivery in rest:
                self._in_flight[delivery.uuid] = (delivery, task)
        for owner in [subscriber, *self._waiting]:
            queue = self._waiting.get(owner)
            while queue and self._slots.can_send(owner):
                self._send(queue.popleft())
            if owner in self._waiting and not queue:
                del self._waiting[owner]

    async def _hand_back_unsent(
        self, rest: tuple[claims.ClaimedDelivery, ...], held: UUID | None = None
    ) -> None:
        # Claimed, never sent: back to the queue, their attempts untouched; then ``held`` (an
        # ordered webhook whose run ended on a failure) may be claimed for again.
        try:
            self.counters["handed_back"] += await outbox.hand_back(self._engine, rest)
        except Exception:
            logger.warning("handing back deliveries failed; their leases will expire", exc_info=True)
        for delivery in rest:
            del self._in_flight[delivery.uuid]
        if held is not None:
            self._slots.unhold(held)
        self._wakeup.set()

    async def _deliver(self, delivery: claims.ClaimedDelivery) -> None:
        record = await self._attempt(delivery)
        self._finish(delivery, record)

    async def _deliver_run(self, run: list[claims.ClaimedDelivery]) -> None:
        # An ordered webhook's run, in recording order: each once the one before was answered
        # 2xx. What follows a failure goes back to the queue once the failure's outcome (a retry
        # that holds them back) is written.
        for i, delivery in enumerate(run):
            record = await self._attempt(delivery)
            rest = run[i + 1 :]
            if record.ok and rest:
                self._finish(delivery, record, hold=False, release=False)
                continue
            self._finish(delivery, record, rest=rest)
            return

    async def _attempt(self, delivery: claims.ClaimedDelivery) -> AttemptRecord:
        target = delivery.target
        assert target is not None
        try:
            record = await send_attempt(
                self._clients,
                target,
                msg_id=str(delivery.event_uuid),
                event_type=delivery.event_type,
                delivery_uuid=str(delivery.uuid),
                attempt=delivery.attempt_number,
                event=orjson.loads(delivery.payload),
                timeout_s=self._settings.delivery_timeout_seconds,
            )
        except Exception:
            # A bug must not keep the delivery leased: record it as a failed attempt.
            logger.exception("delivery attempt crashed", extra={"delivery": str(delivery.uuid)})
            now = datetime.now(UTC)
            record = AttemptRecord(delivery.attempt_number, now, 0.0, None, "internal error", None)
        return record

    def _finish(
        self,
        delivery: claims.ClaimedDelivery,
        record: AttemptRecord,
        *,
        hold: bool = True,
        release: bool = True,
        rest: Sequence[claims.ClaimedDelivery] = (),
    ) -> None:
        subscriber = delivery.subscriber_uuid
        assert delivery.target is not None
        destination = url_origin(delivery.target.url)
        completion = completion_of(
            delivery, record, destination=destination, waits=self._settings.retry_waits_seconds, rng=self._rng
        )
        paused_or_gone = isinstance(completion.outcome, Gone) or completion.paused_until is not None
        if paused_or_gone or (delivery.ordered and hold):
            # Claim nothing more for it until the disable, the pause, or (ordered) this outcome is
            # written: held, it counts as full here and in the counts this dispatcher publishes.
            self._slots.hold(subscriber)
            completion = dataclasses.replace(
                completion, on_written=functools.partial(self._release_hold, subscriber, tuple(rest))
            )
        self._writer.put(completion)
        self.counters["attempts"] += 1
        if self._observer is not None:
            self._observer.observe_attempt(record.duration_ms / 1000, "success" if record.ok else "failure")
        if not record.ok:
            logger.info(
                "delivery attempt failed",
                extra={
                    "delivery": str(delivery.uuid),
                    "destination": destination,
                    "attempt": record.number,
                    "reason": record.error or record.status_code,
                },
            )
        del self._in_flight[delivery.uuid]
        if not release:
            return
        duration_s = record.duration_ms / 1000 if record.ok else None
        worth = self._slots.release(subscriber, duration_s=duration_s, failed=completion.circuit_failed)
        if self._waiting:
            self._send_waiting(subscriber, answered=record.ok and not paused_or_gone)
        if worth:
            self._wakeup.set()
        elif self._slots.refill_soon(subscriber):
            self._wake_soon()

    def _wake_soon(self) -> None:
        # A slot freed where the last claim was cut: claim for it shortly, with what frees meanwhile.
        if self._refill_timer is None or self._refill_timer.cancelled():
            loop = asyncio.get_running_loop()
            self._refill_timer = loop.call_later(REFILL_DELAY_S, self._refill_due)

    def _refill_due(self) -> None:
        self._refill_timer = None
        self._wakeup.set()

    def _release_hold(self, subscriber: UUID, rest: tuple[claims.ClaimedDelivery, ...] = ()) -> None:
        if rest:
            # They stay held (and counted) until they are back in the queue.
            task = asyncio.create_task(self._hand_back_unsent(rest, held=subscriber))
            for delivery in rest:
                self._in_flight[delivery.uuid] = (delivery, task)
            return
        self._slots.unhold(subscriber)
        self._wakeup.set()
