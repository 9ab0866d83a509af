"""The webhook claim keeps to the per-subscriber index even when the statistics are stale."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

import asyncpg

from service.delivery.connection import MAX_CACHED_STATEMENT_BYTES
from service.outbox import claim_webhooks
from service.outbox.queries import CLAIM_WEBHOOKS


async def _add_webhook(db: asyncpg.Connection) -> UUID:
    uuid = uuid4()
    await db.execute(
        "INSERT INTO subscribers (uuid, kind, name, url, secret, enabled) "
        "VALUES ($1, 'webhook', 'hook', 'http://127.0.0.1:9/hook', 'whsec_test', true)",
        uuid,
    )
    return uuid


async def _add_deliveries(db: asyncpg.Connection, subscriber: UUID, count: int, status: str) -> None:
    await db.execute(
        "INSERT INTO deliveries "
        "(uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload, status) "
        "SELECT gen_random_uuid(), gen_random_uuid(), 'project:created', $1, 'webhook', '{}', $3 "
        "FROM generate_series(1, $2)",
        subscriber,
        count,
        status,
    )


async def test_a_queue_analyzed_while_empty_is_still_claimed_through_the_subscriber_index(
    db: asyncpg.Connection,
) -> None:
    healthy, hanging = await _add_webhook(db), await _add_webhook(db)
    await _add_deliveries(db, healthy, 20_000, "delivered")
    await db.execute("VACUUM (ANALYZE) deliveries")  # statistics: nothing is pending
    for subscriber in (healthy, hanging):
        await _add_deliveries(db, subscriber, 2_000, "pending")
    busy = {hanging: 16}  # the hanging endpoint holds all its slots

    await db.execute("SET plan_cache_mode = force_generic_plan")  # as a long-lived connection plans it
    plan = await db.fetch(  # EXPLAIN without ANALYZE: nothing is claimed here
        "EXPLAIN (COSTS OFF) " + CLAIM_WEBHOOKS,
        list(busy),
        list(busy.values()),
        16,
        64,
        uuid4(),
        60.0,
        uuid4(),
        [],
        [],
        16,
    )
    # Every read of deliveries goes through a per-subscriber index (or the primary key for the
    # update): none scans the whole pending queue to sort it. (Which sorts the planner adds above
    # those reads depends on the statistics: the property is the reads, not the plan's shape.)
    lines = [row[0] for row in plan]
    scans = [line for line in lines if re.search(r"(?<!Bitmap Heap )Scan .*on deliveries", line)]
    # A bitmap heap scan reads rows picked by uuid (the ordered runs, the probes): the primary key.
    bitmaps = [
        lines[i + 1 : i + 4] for i, line in enumerate(lines) if "Bitmap Heap Scan on deliveries" in line
    ]
    assert all(any("Bitmap Index Scan on pk_deliveries" in x for x in b) for b in bitmaps), bitmaps
    assert scans
    indexes = (
        "ix_deliveries_subscriber_due",
        "ix_deliveries_throttled",
        "ix_deliveries_pending_seq",
        "pk_deliveries",
    )
    assert all(any(index in s for index in indexes) for s in scans), scans

    claim = await claim_webhooks(db, dispatcher=uuid4(), limit=64, per_subscriber=16, busy=busy, lease_s=60.0)
    assert len(claim.rows) == 16
    assert {row["subscriber_uuid"] for row in claim.rows} == {healthy}


async def test_analyze_keeps_no_statistics_on_the_status_of_deliveries(db: asyncpg.Connection) -> None:
    subscriber = await _add_webhook(db)
    await _add_deliveries(db, subscriber, 1_000, "delivered")
    await db.execute("ANALYZE deliveries")
    analyzed = {
        row["attname"]
        for row in await db.fetch("SELECT attname FROM pg_stats WHERE tablename = 'deliveries'")
    }
    assert "subscriber_uuid" in analyzed
    assert "status" not in analyzed  # whatever the queue held then, it says nothing about now


def test_the_claim_stays_a_statement_the_dispatcher_caches() -> None:
    # Larger, asyncpg would parse and plan it anew for every claim (5x its CPU).
    assert len(CLAIM_WEBHOOKS.encode()) < MAX_CACHED_STATEMENT_BYTES
