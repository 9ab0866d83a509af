"""The claim query with a large not-yet-due backlog beside the same with a small one.

Uses the dispatcher's own claim (``service.outbox.claim_webhooks``) on a database of
its own: ``FUTURE_SUBSCRIBERS`` webhooks hold the not-yet-due rows (retries scheduled later),
``DUE_SUBSCRIBERS`` hold rows due now. Each timed claim takes ``limit`` due rows; they are then
marked delivered (untimed), as the outcome writer would, so every claim finds fresh due rows.
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from bench.infra import Postgres
from bench.load import percentile
from service import keyring, outbox
from service.common.secretbox import SecretBox
from service.db import asyncpg_dsn, server_settings
from service.delivery import claims
from service.models.subscribers import secret_context

FUTURE_SUBSCRIBERS = 100
DUE_SUBSCRIBERS = 8
PER_SUBSCRIBER = 16
DISPATCHER = uuid4()
WARMUP_CLAIMS = 5
BOX = SecretBox(keyring.parse_keys(keyring.new_key()))
PAYLOAD = '{"uuid": "x", "type": "project:created", "project": {"uuid": "y", "name": "' + "n" * 200 + '"}}'

_ADD_ROWS_SQL = """
INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload,
                        next_attempt_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'project:created', ($1::uuid[])[1 + i % cardinality($1::uuid[])],
       'webhook', $2::json, now() + $3 * interval '1 second' + i * interval '1 millisecond'
FROM generate_series(1, $4) AS i
"""


async def _add_subscribers(conn: asyncpg.Connection, count: int) -> list[UUID]:
    uuids = [uuid4() for _ in range(count)]
    await conn.executemany(
        "INSERT INTO subscribers (uuid, kind, name, url, secret) VALUES ($1, 'webhook', $2, $3, $4)",
        [
            (
                u,
                f"claims {u}",
                "http://127.0.0.1:9/hook",
                BOX.encrypt("whsec_" + "A" * 44, secret_context(u, "secret")),
            )
            for u in uuids
        ],
    )
    return uuids


async def _measure(
    claimer: asyncpg.Connection, conn: asyncpg.Connection, count: int, limit: int
) -> list[float]:
    timings: list[float] = []
    for i in range(WARMUP_CLAIMS + count):
        start = time.perf_counter()
        claim = await outbox.claim_webhooks(
            claimer, dispatcher=DISPATCHER, limit=limit, per_subscriber=PER_SUBSCRIBER, busy={}, lease_s=60.0
        )
        claimed = claims.webhook_deliveries(claim, BOX)  # as the dispatcher does, targets included
        elapsed_ms = (time.perf_counter() - start) * 1000
        if len(claimed) != limit:
            raise RuntimeError(f"claim took {len(claimed)} rows, expected {limit}")
        await conn.execute(
            "UPDATE deliveries SET status = 'delivered', delivered_at = now(), lease_token = NULL, "
            "lease_expires_at = NULL WHERE uuid = ANY($1::uuid[])",
            [c.uuid for c in claimed],
        )
        if i >= WARMUP_CLAIMS:
            timings.append(elapsed_ms)
    return timings


RATE_LIMITED_SUBSCRIBERS = 1000


async def _rate_limited_figure(
    claimer: asyncpg.Connection, conn: asyncpg.Connection, due: list[UUID], count: int, limit: int
) -> dict[str, Any]:
    """The same claim before and after ``RATE_LIMITED_SUBSCRIBERS`` rate-limited webhooks, each
    with due rows but its next slot an hour away, join the database: what waiting costs a claim."""

    async def measured() -> list[float]:
        await conn.execute(_ADD_ROWS_SQL, due, PAYLOAD, -3600.0, (WARMUP_CLAIMS + count) * limit)
        await conn.execute("VACUUM ANALYZE deliveries")
        return await _measure(claimer, conn, count, limit)

    before = await measured()
    limited = await _add_subscribers(conn, RATE_LIMITED_SUBSCRIBERS)
    await conn.execute(
        "UPDATE subscribers SET rate_limit_per_minute = 60 WHERE uuid = ANY($1::uuid[])", limited
    )
    await conn.execute(
        "INSERT INTO subscriber_rates (subscriber_uuid, next_at) SELECT u, now() + interval '1 hour' "
        "FROM unnest($1::uuid[]) AS u",
        limited,
    )
    await conn.execute(_ADD_ROWS_SQL, limited, PAYLOAD, -3600.0, 5 * RATE_LIMITED_SUBSCRIBERS)
    after = await measured()
    waiting = await conn.fetchval(
        "SELECT count(*) FROM deliveries WHERE status = 'pending' AND subscriber_uuid = ANY($1::uuid[])",
        limited,
    )
    if waiting != 5 * RATE_LIMITED_SUBSCRIBERS:
        raise RuntimeError(f"rate-limited webhooks were claimed from: {waiting} rows left")
    return {
        "webhooks": RATE_LIMITED_SUBSCRIBERS,
        "without_median_ms": round(statistics.median(before), 3),
        "with_median_ms": round(statistics.median(after), 3),
        "with_p90_ms": round(percentile(after, 90), 3),
    }


async def claim_figure(pg: Postgres, sizes: tuple[int, int], count: int, limit: int) -> dict[str, Any]:
    """Median ms per claim of ``limit`` rows with ``sizes[0]``, then ``sizes[1]``, not-yet-due rows."""
    url = await pg.create_database("claims")
    # The dispatcher claims on a dedicated asyncpg connection of its own; so does this.
    claimer = await asyncpg.connect(asyncpg_dsn(url), server_settings=server_settings("bench-claims"))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    results: dict[str, Any] = {"limit": limit, "claims": count}
    try:
        await conn.execute("SET synchronous_commit = off")
        future = await _add_subscribers(conn, FUTURE_SUBSCRIBERS)
        due = await _add_subscribers(conn, DUE_SUBSCRIBERS)
        present = 0
        for size in sizes:
            started = time.monotonic()
            await conn.execute(_ADD_ROWS_SQL, future, PAYLOAD, 3600.0, size - present)
            present = size
            # Due rows, oldest first: enough for every claim of this round.
            await conn.execute(_ADD_ROWS_SQL, due, PAYLOAD, -3600.0, (WARMUP_CLAIMS + count) * limit)
            await conn.execute("VACUUM ANALYZE deliveries")
            fill_s = time.monotonic() - started
            timings = await _measure(claimer, conn, count, limit)
            results[str(size)] = {
                "median_ms": round(statistics.median(timings), 3),
                "p90_ms": round(percentile(timings, 90), 3),
                "fill_seconds": round(fill_s, 1),
            }
        results["rate_limited"] = await _rate_limited_figure(claimer, conn, due, count, limit)
    finally:
        await conn.close()
        await claimer.close()
    return results
