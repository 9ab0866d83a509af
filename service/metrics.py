"""Prometheus metrics, one registry per app (several apps may run in one process, e.g. in tests).

``create_app`` puts a :class:`Metrics` on ``app.state.metrics``; routes reach it through
``service.api.metrics.MetricsDep``, the lifespan hands it to whatever it starts. Pushed by the
rest of Herald (cheap, synchronous, never touching the database):

- ``metrics.events_ingested(type_name, count=1)`` — after an ingest commits, for new events only
  (not replays). Counted by type family: the type without its last segment.
- ``metrics.observe_attempt(duration_s, outcome, subscriber_kind="webhook")`` — after every HTTP
  attempt of a delivery (a whole request for batched analytics): its duration, ``outcome``
  ``"success"`` (2xx) or ``"failure"`` (anything else, timeouts and refused connections included).
- ``metrics.retention_deleted(table, count)`` — rows the retention job removed.

Pulled when ``/metrics`` is scraped (``refresh(engine, dispatcher)``), so nobody keeps them up to
date by hand:

- the dispatcher's ``stats()`` (``service.delivery.dispatcher.DispatcherStats``): deliveries by
  outcome (``delivered``, ``retrying`` = rescheduled, ``failed``, ``cancelled``), in-flight count,
  its other counters;
- the delivery queue (pending / due / delivering, age of the oldest due delivery) and the
  operational events recorded, per type (``operational_counts``, written in the transaction of
  each event, shared by the replicas and never lowered by retention), read from the database
  under a short timeout; while the database cannot answer, those samples are left out rather
  than reported stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.catalog import CUSTOM_KIND, OPERATIONAL, info_of

logger = logging.getLogger(__name__)

AttemptOutcome = Literal["success", "failure"]
SubscriberKind = Literal["webhook", "analytics"]

# Webhook receivers answer in milliseconds to seconds; the per-attempt timeout defaults to 15 s.
ATTEMPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)
QUEUE_QUERY_TIMEOUT_S = 2.0
QUEUE_STATEMENT_TIMEOUT_MS = 1500

# The dispatcher counts final delivery statuses as written; "pending" means rescheduled.
DELIVERY_OUTCOMES = {
    "delivered": "delivered",
    "pending": "retrying",
    "failed": "failed",
    "cancelled": "cancelled",
}

# Every count is served by one of the partial indexes on ``deliveries`` (status = pending/delivering;
# rows parked by a rate limit, all due, have an index of their own).
_QUEUE_SQL = text(
    """
SELECT
    (SELECT count(*) FROM deliveries WHERE status = 'pending') AS pending,
    (SELECT count(*) FROM deliveries
      WHERE status = 'pending' AND NOT throttled AND next_attempt_at <= now())
    + (SELECT count(*) FROM deliveries WHERE status = 'pending' AND throttled) AS due,
    (SELECT count(*) FROM deliveries WHERE status = 'delivering') AS delivering,
    (SELECT EXTRACT(EPOCH FROM now() - least(
        (SELECT min(next_attempt_at) FROM deliveries
          WHERE status = 'pending' AND NOT throttled AND next_attempt_at <= now()),
        (SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending' AND throttled)
     ))) AS oldest_due_s
"""
)

_OPERATIONAL_COUNTS_SQL = text("SELECT type, recorded FROM operational_counts")


def type_family(type_name: str) -> str:
    """``project:one-off-job:pipeline-run:failed`` → ``project:one-off-job:pipeline-run``."""
    family, sep, _ = type_name.rpartition(":")
    return family if sep else type_name


class DispatcherStatsLike(Protocol):
    @property
    def in_flight(self) -> int: ...
    @property
    def outcomes_queued(self) -> int: ...
    @property
    def listener_connected(self) -> bool: ...
    @property
    def counters(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class QueueSnapshot:
    pending: int
    due: int
    delivering: int
    oldest_due_s: float
    operational: Mapping[str, int]


class ScrapeTimeCollector(Collector):
    """Exports what the last scrape read: the queue and the dispatcher's figures (when known)."""

    def __init__(self) -> None:
        self.queue: QueueSnapshot | None = None
        self.dispatcher: DispatcherStatsLike | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self._queue_metrics()
        yield from self._dispatcher_metrics()

    def _queue_metrics(self) -> Iterator[Metric]:
        queue = self.queue
        if queue is None:
            return
        depth = GaugeMetricFamily(
            "herald_delivery_queue_depth",
            "Deliveries waiting: pending (scheduled retries included), due (pending, due now), delivering.",
            labels=["state"],
        )
        depth.add_metric(["pending"], queue.pending)
        depth.add_metric(["due"], queue.due)
        depth.add_metric(["delivering"], queue.delivering)
        yield depth
        yield GaugeMetricFamily(
            "herald_delivery_queue_oldest_due_seconds",
            "How long the oldest due delivery has been waiting (0 when none is due).",
            value=queue.oldest_due_s,
        )
        operational = CounterMetricFamily(
            "herald_operational_events",
            "Operational events (herald:*) recorded by all replicas, by type.",
            labels=["type"],
        )
        for name in OPERATIONAL:
            operational.add_metric([name], queue.operational.get(name, 0))
        yield operational

    def _dispatcher_metrics(self) -> Iterator[Metric]:
        stats = self.dispatcher
        yield GaugeMetricFamily(
            "herald_dispatcher_in_flight",
            "Deliveries being sent by this process right now (0 when its dispatcher is off).",
            value=stats.in_flight if stats is not None else 0,
        )
        if stats is None:
            return
        outcomes = CounterMetricFamily(
            "herald_deliveries",
            "Delivery outcomes written by this process: delivered, retrying, failed, cancelled.",
            labels=["outcome"],
        )
        for key, outcome in DELIVERY_OUTCOMES.items():
            outcomes.add_metric([outcome], stats.counters.get(key, 0))
        yield outcomes
        others = CounterMetricFamily(
            "herald_dispatcher_operations",
            "The dispatcher's other counters (claimed, attempts, stale, released_expired, handed_back, ...).",
            labels=["operation"],
        )
        for key, value in sorted(stats.counters.items()):
            if key not in DELIVERY_OUTCOMES:
                others.add_metric([key], value)
        yield others
        yield GaugeMetricFamily(
            "herald_dispatcher_outcomes_queued",
            "Attempt outcomes not written yet.",
            value=stats.outcomes_queued,
        )
        yield GaugeMetricFamily(
            "herald_dispatcher_listener_connected",
            "1 while the LISTEN connection for wake-ups is up.",
            value=1 if stats.listener_connected else 0,
        )


class Metrics:
    """Herald's metric objects, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self._events = Counter(
            "herald_events_ingested",
            "Events recorded (replays not counted), by type family (custom types: 'custom').",
            ["family"],
            registry=self.registry,
        )
        self._attempt_duration = Histogram(
            "herald_delivery_attempt_duration_seconds",
            "Duration of delivery attempts (the HTTP request to the subscriber), by outcome.",
            ["outcome", "subscriber_kind"],
            buckets=ATTEMPT_BUCKETS_S,
            registry=self.registry,
        )
        self._retention_deleted = Counter(
            "herald_retention_deleted_rows",
            "Rows removed by the retention job, by table.",
            ["table"],
            registry=self.registry,
        )
        self._scraped = ScrapeTimeCollector()
        self.registry.register(self._scraped)

    def events_ingested(self, type_name: str, count: int = 1) -> None:
        # Custom types are counted together: their names are producers' and unbounded in number.
        family = type_family(type_name) if info_of(type_name) is not None else CUSTOM_KIND
        self._events.labels(family).inc(count)

    def observe_attempt(
        self, duration_s: float, outcome: AttemptOutcome, subscriber_kind: SubscriberKind = "webhook"
    ) -> None:
        self._attempt_duration.labels(outcome, subscriber_kind).observe(duration_s)

    def retention_deleted(self, table: str, count: int) -> None:
        if count > 0:
            self._retention_deleted.labels(table).inc(count)

    async def refresh(self, engine: AsyncEngine, dispatcher: object | None) -> None:
        """Read what is pulled at scrape time (see the module docstring)."""
        stats = getattr(dispatcher, "stats", None)
        self._scraped.dispatcher = stats() if callable(stats) else None
        self._scraped.queue = await read_queue(engine)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def read_queue(engine: AsyncEngine) -> QueueSnapshot | None:
    """The delivery queue right now, or ``None`` if the database does not answer quickly."""
    try:
        async with asyncio.timeout(QUEUE_QUERY_TIMEOUT_S), engine.connect() as conn, conn.begin():
            await conn.execute(text(f"SET LOCAL statement_timeout = {QUEUE_STATEMENT_TIMEOUT_MS}"))
            row = (await conn.execute(_QUEUE_SQL)).one()
            counts = {r.type: int(r.recorded) for r in await conn.execute(_OPERATIONAL_COUNTS_SQL)}
    except Exception as exc:  # a scrape must answer even while the database is away
        logger.debug("queue depth unavailable: %s", type(exc).__name__)
        return None
    return QueueSnapshot(
        pending=row.pending,
        due=row.due,
        delivering=row.delivering,
        oldest_due_s=max(0.0, float(row.oldest_due_s or 0.0)),
        operational=counts,
    )
