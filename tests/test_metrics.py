"""``GET /metrics``: Prometheus text with ingest counts, delivery outcomes, attempt latency, queue depth."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from service.db import create_engine
from service.metrics import Metrics, type_family
from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(running: RunningApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await running.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def test_type_family_drops_the_last_segment() -> None:
    assert type_family("project:one-off-job:pipeline-run:failed") == "project:one-off-job:pipeline-run"
    assert type_family("jupyter:image-build:started") == "jupyter:image-build"
    assert type_family("ping") == "ping"


async def test_ingested_events_are_counted_by_family_and_replays_are_not(herald: RunningApp) -> None:
    first = sample_event("project:one-off-job:pipeline-run:failed")
    assert (await herald.client.post("/api/v1/events", json=first)).status_code == 202
    assert (await herald.client.post("/api/v1/events", json=first)).status_code == 200  # replay
    batch = [sample_event("project:one-off-job:pipeline-run:succeeded"), sample_event("project:created")]
    assert (await herald.client.post("/api/v1/events/batch", json={"events": batch})).status_code == 202

    found = await scrape(herald)
    family = (("family", "project:one-off-job:pipeline-run"),)
    assert found[("herald_events_ingested_total", family)] == 2
    assert found[("herald_events_ingested_total", (("family", "project"),))] == 1


async def test_queue_depth_is_read_at_scrape_time(herald: RunningApp, db: asyncpg.Connection) -> None:
    subscriber = uuid.uuid4()
    rows = [
        ("pending", timedelta(minutes=-5)),
        ("pending", timedelta(minutes=-1)),
        ("pending", timedelta(hours=1)),  # a retry not due yet
        ("delivering", timedelta(0)),
        ("delivered", None),
        ("failed", None),
    ]
    for status, offset in rows:
        await db.execute(
            "INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, "
            "payload, status, next_attempt_at) "
            "VALUES ($1, $2, 'project:created', $3, 'webhook', '{}', $4, now() + $5::interval)",
            uuid.uuid4(),
            uuid.uuid4(),
            subscriber,
            status,
            offset,
        )
    found = await scrape(herald)
    assert found[("herald_delivery_queue_depth", (("state", "pending"),))] == 3
    assert found[("herald_delivery_queue_depth", (("state", "due"),))] == 2
    assert found[("herald_delivery_queue_depth", (("state", "delivering"),))] == 1
    assert 295 <= found[("herald_delivery_queue_oldest_due_seconds", ())] <= 400


@dataclass(frozen=True)
class FakeStats:
    in_flight: int
    outcomes_queued: int
    listener_connected: bool
    counters: dict[str, int]


class FakeDispatcher:
    def __init__(self, stats: FakeStats) -> None:
        self._stats = stats

    def is_alive(self) -> bool:
        return True

    def stats(self) -> FakeStats:
        return self._stats


async def test_attempt_durations_are_a_histogram(herald: RunningApp) -> None:
    metrics: Metrics = herald.app.state.metrics
    metrics.observe_attempt(0.03, "success")
    metrics.observe_attempt(2.0, "failure")
    metrics.observe_attempt(0.2, "success", subscriber_kind="analytics")
    found = await scrape(herald)
    bucket = (("le", "0.05"), ("outcome", "success"), ("subscriber_kind", "webhook"))
    assert found[("herald_delivery_attempt_duration_seconds_bucket", bucket)] == 1
    failures = (("outcome", "failure"), ("subscriber_kind", "webhook"))
    assert found[("herald_delivery_attempt_duration_seconds_count", failures)] == 1
    assert found[("herald_delivery_attempt_duration_seconds_sum", failures)] == 2.0
    analytics = (("outcome", "success"), ("subscriber_kind", "analytics"))
    assert found[("herald_delivery_attempt_duration_seconds_count", analytics)] == 1


async def test_dispatcher_figures_are_read_at_scrape_time(herald: RunningApp) -> None:
    assert (await scrape(herald))[("herald_dispatcher_in_flight", ())] == 0  # dispatcher off
    counters = {"delivered": 7, "pending": 3, "failed": 1, "claimed": 12, "attempts": 11}
    herald.state.dispatcher = FakeDispatcher(FakeStats(5, 2, True, counters))
    try:
        found = await scrape(herald)
    finally:
        herald.state.dispatcher = None
    assert found[("herald_dispatcher_in_flight", ())] == 5
    assert found[("herald_deliveries_total", (("outcome", "delivered"),))] == 7
    assert found[("herald_deliveries_total", (("outcome", "retrying"),))] == 3
    assert found[("herald_deliveries_total", (("outcome", "failed"),))] == 1
    assert found[("herald_deliveries_total", (("outcome", "cancelled"),))] == 0
    assert found[("herald_dispatcher_operations_total", (("operation", "claimed"),))] == 12
    assert found[("herald_dispatcher_outcomes_queued", ())] == 2
    assert found[("herald_dispatcher_listener_connected", ())] == 1


async def test_a_running_dispatcher_is_scraped(app_factory: AppFactory) -> None:
    async with app_factory(dispatcher_enabled=True) as running:
        found = await scrape(running)
    assert found[("herald_dispatcher_in_flight", ())] == 0
    assert found[("herald_deliveries_total", (("outcome", "delivered"),))] == 0


async def test_each_app_has_its_own_registry(app_factory: AppFactory) -> None:
    async with app_factory() as one, app_factory() as two:
        one.app.state.metrics.events_ingested("project:created", 5)
        assert ("herald_events_ingested_total", (("family", "project"),)) in await scrape(one)
        assert ("herald_events_ingested_total", (("family", "project"),)) not in await scrape(two)


async def test_scrape_answers_without_queue_depth_while_the_database_is_away(herald: RunningApp) -> None:
    assert ("herald_delivery_queue_depth", (("state", "due"),)) in await scrape(herald)
    real_engine = herald.state.engine
    # Nothing listens on port 1: connecting fails at once, like a database that went away.
    herald.state.engine = create_engine("postgresql://herald@127.0.0.1:1/none")
    try:
        found = await scrape(herald)
    finally:
        await herald.state.engine.dispose()
        herald.state.engine = real_engine
    assert not any(name.startswith("herald_delivery_queue") for name, _ in found)
    assert ("herald_dispatcher_in_flight", ()) in found
    assert ("herald_delivery_queue_depth", (("state", "due"),)) in await scrape(herald)
