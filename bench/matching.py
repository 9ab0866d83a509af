"""How fast is matching with thousands of subscriptions? (``uv run python bench/matching.py``)

Builds a fresh database (on ``HERALD_DATABASE_URL``'s server, or an embedded PostgreSQL),
stores ``--subscriptions`` subscriptions spread over subscribers (exact names, wildcards,
project and job scopes), then times ingests through the HTTP API in process: single events
one after the other, and batches. The same ingests against an empty subscription table give
the baseline; the difference is the cost of matching. Loopback only; no outside names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from service import migrations
from service.catalog import CATALOG, allowed_scopes
from service.config import Settings
from service.db import EmbeddedPostgres, asyncpg_dsn
from service.main import create_app
from tests.support.event_samples import sample_event

TYPES = list(CATALOG)
WILDCARDS = [
    "*",
    "*:failed",
    "*:succeeded",
    "project:*",
    "project:*:pipeline-run:failed",
    "project:one-off-job:*",
    "project:cron-job:*",
    "project:*-job:*",
    "jupyter:*",
    "project:environment:image-build:*",
]


def _subscriptions(
    count: int,
    per_subscriber: int,
    projects: list[str],
    jobs: list[tuple[str, str]],
    mix: str,
    rng: random.Random,
) -> list[tuple[Any, ...]]:
    """(subscriber index, kind, event_type, project_uuid, job_uuid) rows.

    ``selective``: most subscriptions are scoped to a project or a job (the way teams watch
    their own work), 30 % use wildcards, about 1 % are unscoped wildcards; an event matches a
    handful. ``broad``: no scope preference, so the unscoped wildcards alone match hundreds of
    subscribers per event (a fan-out test more than a matching test).
    """
    rows: list[tuple[Any, ...]] = []
    seen: set[tuple[Any, ...]] = set()
    scoped_share = 0.97 if mix == "selective" else 0.6
    while len(rows) < count:
        owner = len(rows) // per_subscriber
        pattern = rng.choice(WILDCARDS if rng.random() < 0.3 else TYPES)
        if pattern == "*" and rng.random() < 0.95:
            continue  # a few "everything" subscriptions, not hundreds
        scopes = allowed_scopes(pattern)
        if not scopes and mix == "selective" and rng.random() < 0.9:
            continue  # unscopable patterns ("*:failed", "jupyter:*") stay rare
        project = job = None
        if scopes and rng.random() < scoped_share:
            if ("project_uuid", "job_uuid") in scopes and rng.random() < 0.5:
                project, job = rng.choice(jobs)
            else:
                project = rng.choice(projects)
        key = (owner, pattern, project, job)
        if key in seen:
            continue
        seen.add(key)
        kind = "job" if job else "project" if project else "global"
        rows.append((owner, kind, pattern, project, job))
    return rows


async def _populate(
    database_url: str,
    count: int,
    per_subscriber: int,
    projects: list[str],
    jobs: list[tuple[str, str]],
    mix: str,
) -> None:
    rng = random.Random(7)
    rows = _subscriptions(count, per_subscriber, projects, jobs, mix, rng)
    owners = sorted({row[0] for row in rows})
    subscriber_uuids = {owner: uuid.uuid4() for owner in owners}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.executemany(
            "INSERT INTO subscribers (uuid, kind, name, url, secret) VALUES ($1, 'webhook', $2, $3, $4)",
            [
                (subscriber_uuids[o], f"bench {o}", "http://127.0.0.1:9/hook", "whsec_" + "A" * 44)
                for o in owners
            ],
        )
        await conn.executemany(
            "INSERT INTO subscriptions (uuid, subscriber_uuid, kind, event_type, project_uuid, job_uuid) "
            "VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)",
            [
                (subscriber_uuids[o], kind, pattern, p and uuid.UUID(p), j and uuid.UUID(j))
                for o, kind, pattern, p, j in rows
            ],
        )
        await conn.execute("ANALYZE subscriptions; ANALYZE subscribers")
        stats = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE has_wildcard) AS wild, "
            "count(*) FILTER (WHERE kind = 'project') AS project, "
            "count(*) FILTER (WHERE kind = 'job') AS job FROM subscriptions"
        )
        assert stats is not None
        print(
            f"  {stats['n']} subscriptions over {len(owners)} webhooks: {stats['wild']} with wildcards, "
            f"{stats['project']} project-scoped, {stats['job']} job-scoped"
        )
    finally:
        await conn.close()


def _event(rng: random.Random, projects: list[str], jobs: list[tuple[str, str]]) -> dict[str, Any]:
    type_name = rng.choice(TYPES)
    body = sample_event(type_name)
    if "job" in body and rng.random() < 0.5:
        body["project"]["uuid"], body["job"]["uuid"] = rng.choice(jobs)
    elif "project" in body:
        body["project"]["uuid"] = rng.choice(projects)
    return body


async def _measure(
    database_url: str,
    singles: int,
    batches: int,
    batch_size: int,
    projects: list[str],
    jobs: list[tuple[str, str]],
) -> dict[str, float]:
    rng = random.Random(11)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        migrate_on_start=False,
        dispatcher_enabled=False,
        allow_private_destinations=True,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.bench") as client:
            for _ in range(20):  # warm up pools and plans
                await client.post("/api/v1/events", json=_event(rng, projects, jobs))
            single_ms: list[float] = []
            deliveries = 0
            for _ in range(singles):
                body = _event(rng, projects, jobs)
                start = time.perf_counter()
                response = await client.post("/api/v1/events", json=body)
                single_ms.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 202, response.text
                deliveries += response.json()["deliveries"]
            batch_ms: list[float] = []
            for _ in range(batches):
                events = [_event(rng, projects, jobs) for _ in range(batch_size)]
                start = time.perf_counter()
                response = await client.post("/api/v1/events/batch", json={"events": events})
                batch_ms.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 202, response.text
    return {
        "single_median_ms": statistics.median(single_ms),
        "single_p95_ms": statistics.quantiles(single_ms, n=20)[-1],
        "deliveries_per_event": deliveries / singles,
        "batch_median_ms": statistics.median(batch_ms),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--per-subscriber", type=int, default=5)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--mix", choices=("selective", "broad"), default="selective")
    parser.add_argument("--projects", type=int, default=500)
    args = parser.parse_args()

    admin_url = os.environ.get("HERALD_DATABASE_URL")
    server: EmbeddedPostgres | None = None
    if not admin_url:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="hbench", dir="/tmp")))
        admin_url = server.start()
    rng = random.Random(3)
    projects = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.projects)]
    jobs = [
        (rng.choice(projects), str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        for _ in range(4 * args.projects)
    ]
    created: list[str] = []
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        results: dict[str, dict[str, float]] = {}
        for label, count in (
            ("no subscriptions", 0),
            (f"{args.subscriptions} subscriptions", args.subscriptions),
        ):
            name = f"herald_bench_{uuid.uuid4().hex[:12]}"
            await admin.execute(f"CREATE DATABASE {name}")
            created.append(name)
            url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            await migrations.upgrade(url)
            print(f"{label}:")
            if count:
                await _populate(url, count, args.per_subscriber, projects, jobs, args.mix)
            results[label] = await _measure(url, args.singles, args.batches, args.batch_size, projects, jobs)
            for key, value in results[label].items():
                print(f"  {key}: {value:.2f}")
    finally:
        for name in created:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
