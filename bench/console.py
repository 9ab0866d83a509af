"""``uv run python -m bench.console [--quick]``: the console's pages timed on a full outbox.

Fills a database of its own with 100,000 webhook deliveries (``--quick``: 5,000) — 20 webhooks,
events ingested through the batch API, then statuses, ages (spread over 48 h) and one attempt
per finished delivery set in SQL — and times each main page of ``/ui/`` and of a project's
``/portal/`` (one of the two subscribed webhooks is owned by the events' project) server-side: the app
runs in this process (no network), and the time of a request is measured around the ASGI app,
from the request to the last byte of the answer. Prints median and worst of the timed runs per
page; a full run (no ``--quick``, no ``--deliveries``) also writes ``bench/console_results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.infra import Postgres
from bench.workload import MAIN_TYPE, PROJECT_UUID, main_event
from service.config import Settings
from service.db import asyncpg_dsn
from service.main import create_app
from service.serving import tune_garbage_collector

RESULTS_PATH = Path(__file__).with_name("console_results.json")
WEBHOOKS = 20
SUBSCRIBED = 2
"""Webhooks subscribed to the events ingested: each event makes that many deliveries."""
OWNED = 1
"""The webhook owned by the events' project: the portal pages show it and its deliveries."""
BATCH_EVENTS = 1000

_SHAPE_SQL = """
UPDATE deliveries d SET
    created_at = now() - make_interval(secs => r.v * 172800),
    updated_at = now() - make_interval(secs => r.v * 172800),
    status = CASE WHEN r.w < 0.90 THEN 'delivered' WHEN r.w < 0.97 THEN 'failed' ELSE 'pending' END,
    attempts_count = CASE WHEN r.w < 0.90 THEN 1 WHEN r.w < 0.97 THEN 8 ELSE 0 END,
    delivered_at = CASE WHEN r.w < 0.90 THEN now() - make_interval(secs => r.v * 172800) END,
    last_error = CASE WHEN r.w >= 0.90 AND r.w < 0.97 THEN 'HTTP 500' END
FROM (SELECT uuid, random() AS v, random() AS w FROM deliveries) r
WHERE d.uuid = r.uuid
"""
_ATTEMPTS_SQL = """
INSERT INTO delivery_attempts (delivery_uuid, number, started_at, duration_ms, status_code, response_body)
SELECT uuid, 1, created_at, 12.5, CASE status WHEN 'delivered' THEN 200 ELSE 500 END, 'ok'
FROM deliveries WHERE status <> 'pending'
"""


class Stopwatch:
    """Wraps the app: records the duration of every HTTP request it serves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.durations_ms: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.durations_ms.append((time.perf_counter() - started) * 1000)


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Stopwatch]]:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        migrate_on_start=False,
        dispatcher_enabled=False,
        telemetry_url=None,
        api_keys="",
        allow_private_destinations=True,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        stopwatch = Stopwatch(manager.app)
        transport = httpx.ASGITransport(app=stopwatch)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, stopwatch


async def fill(client: httpx.AsyncClient, database_url: str, deliveries: int) -> dict[str, str]:
    """The outbox described in the module docstring; returns uuids the timed pages need."""
    hooks = []
    for index in range(WEBHOOKS):
        subscriptions = [{"event_type": MAIN_TYPE if index < SUBSCRIBED else "project:deleted"}]
        body: dict[str, object] = {
            "name": f"bench hook {index}",
            "url": "http://127.0.0.1:9/hook",
            "subscriptions": subscriptions,
        }
        if index == OWNED:
            body["project_uuid"] = PROJECT_UUID
        created = await client.post("/api/v1/subscribers/webhooks", json=body)
        created.raise_for_status()
        hooks.append(created.json()["uuid"])
    events = deliveries // SUBSCRIBED
    for start in range(0, events, BATCH_EVENTS):
        batch = [main_event() for _ in range(min(BATCH_EVENTS, events - start))]
        answer = await client.post("/api/v1/events/batch", json={"events": batch})
        answer.raise_for_status()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(_SHAPE_SQL)
        await conn.execute(_ATTEMPTS_SQL)
        await conn.execute(
            "UPDATE subscribers SET failing_since = now() - interval '3 hours' WHERE uuid = $1", hooks[1]
        )
        await conn.execute("VACUUM ANALYZE")
        failed = await conn.fetchval("SELECT uuid FROM deliveries WHERE status = 'failed' LIMIT 1")
        owned_failed = await conn.fetchval(
            "SELECT uuid FROM deliveries WHERE status = 'failed' AND subscriber_uuid = $1 LIMIT 1",
            hooks[OWNED],
        )
        event = await conn.fetchval("SELECT uuid FROM events ORDER BY seq DESC LIMIT 1")
        count = await conn.fetchval("SELECT count(*) FROM deliveries")
    finally:
        await conn.close()
    link = await client.post("/api/v1/portal-links", json={"project_uuid": PROJECT_UUID})
    link.raise_for_status()
    # The link opened (its page's button): the client keeps the portal session's cookie for the pages.
    entered = await client.post(link.json()["url"])
    assert entered.status_code == 303, entered.text
    return {
        "webhook": hooks[0],
        "delivery": str(failed),
        "event": str(event),
        "deliveries": str(count),
        "owned": hooks[OWNED],
        "owned_delivery": str(owned_failed),
    }


def pages(ids: dict[str, str]) -> dict[str, str]:
    two_hours_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 7200))
    return {
        "overview": "/ui/",
        "webhooks": "/ui/webhooks",
        "webhook": f"/ui/webhooks/{ids['webhook']}",
        "deliveries": "/ui/deliveries",
        "deliveries, one webhook": f"/ui/deliveries?webhook={ids['webhook']}",
        "deliveries, failed": "/ui/deliveries?status=failed",
        "deliveries, HTTP 500": "/ui/deliveries?code=500",
        "deliveries, last 2 h": f"/ui/deliveries?since={two_hours_ago}",
        "delivery": f"/ui/deliveries/{ids['delivery']}",
        "events": "/ui/events",
        "events, type pattern": "/ui/events?type=project:*:failed",
        "event": f"/ui/events/{ids['event']}",
        "event types": "/ui/event-types",
        "portal: webhooks": "/portal/webhooks",
        "portal: webhook": f"/portal/webhooks/{ids['owned']}",
        "portal: deliveries": "/portal/deliveries",
        "portal: deliveries, HTTP 500": "/portal/deliveries?code=500",
        "portal: delivery": f"/portal/deliveries/{ids['owned_delivery']}",
        "portal: events": "/portal/events",
        "portal: event": f"/portal/events/{ids['event']}",
    }


async def time_pages(
    client: httpx.AsyncClient, stopwatch: Stopwatch, paths: dict[str, str], runs: int
) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, path in paths.items():
        for _ in range(2):  # warm: templates compiled, statements prepared
            (await client.get(path)).raise_for_status()
        stopwatch.durations_ms.clear()
        for _ in range(runs):
            (await client.get(path)).raise_for_status()
        samples = stopwatch.durations_ms
        if os.environ.get("BENCH_CONSOLE_SAMPLES"):
            print(name, [round(sample, 1) for sample in samples])
        figures[name] = {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}
    return figures


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 deliveries, 5 runs per page (seconds)")
    parser.add_argument("--deliveries", type=int, help="deliveries in the outbox (100000)")
    parser.add_argument("--runs", type=int, help="timed requests per page (20)")
    parser.add_argument("--keep", action="store_true", help="keep the filled database (prints its URL)")
    args = parser.parse_args(argv)
    deliveries = args.deliveries or (5_000 if args.quick else 100_000)
    runs = args.runs or (5 if args.quick else 20)
    pg = Postgres(Path("/tmp"))
    await pg.start()
    try:
        database_url = await pg.create_database("console")
        async with running(database_url) as (client, stopwatch):
            started = time.monotonic()
            ids = await fill(client, database_url, deliveries)
            print(f"filled {ids['deliveries']} deliveries in {time.monotonic() - started:.1f} s", flush=True)
            # As herald serve does at start (service.serving); the fill's garbage is not a page's cost.
            tune_garbage_collector()
            figures = await time_pages(client, stopwatch, pages(ids), runs)
    finally:
        if args.keep:
            print(f"kept {database_url}")
            pg.created.remove(make_url(database_url).database or "")
        await pg.stop()
    width = max(len(name) for name in figures)
    print(f"{'page'.ljust(width)}  median ms  worst ms   ({runs} runs each, server-side)")
    for name, figure in figures.items():
        print(f"{name.ljust(width)}  {figure['median_ms']:9.2f}  {figure['max_ms']:8.2f}")
    if not args.quick and args.deliveries is None:  # the figures of a full run only
        result = {"deliveries": int(ids["deliveries"]), "runs": runs, "pages": figures}
        RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
