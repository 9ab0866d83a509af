"""The webhook claim's controls, statement by statement: rate slots, pauses, order, published counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from service.db import create_engine
from service.outbox import claim_webhooks, hand_back, publish_in_flight, sweep_expired_controls
from service.outbox.queries import CLAIM_WEBHOOKS


async def _add_webhook(
    db: asyncpg.Connection,
    *,
    rate_limit_per_minute: int | None = None,
    ordered: bool = False,
    paused_until: datetime | None = None,
) -> UUID:
    uuid = uuid4()
    await db.execute(
        "INSERT INTO subscribers "
        "(uuid, kind, name, url, secret, enabled, rate_limit_per_minute, ordered, paused_until) "
        "VALUES ($1, 'webhook', 'hook', 'http://127.0.0.1:9/hook', 'whsec_test', true, $2, $3, $4)",
        uuid,
        rate_limit_per_minute,
        ordered,
        paused_until,
    )
    return uuid


async def _add_pending(db: asyncpg.Connection, subscriber: UUID, count: int) -> list[UUID]:
    rows = await db.fetch(
        "INSERT INTO deliveries (uuid, event_uuid, event_type, subscriber_uuid, subscriber_kind, payload) "
        "SELECT gen_random_uuid(), gen_random_uuid(), 'project:created', $1, 'webhook', '{}' "
        "FROM generate_series(1, $2) ORDER BY 1 RETURNING uuid, seq",
        subscriber,
        count,
    )
    return [row["uuid"] for row in sorted(rows, key=lambda row: row["seq"])]


async def _claim(db: asyncpg.Connection, dispatcher: UUID, busy: dict[UUID, int] | None = None) -> list[UUID]:
    claim = await claim_webhooks(
        db, dispatcher=dispatcher, limit=100, per_subscriber=16, busy=busy or {}, lease_s=60.0
    )
    return [row["uuid"] for row in claim.rows]


async def test_a_rate_limited_webhook_gets_a_burst_of_three_then_waits_for_its_next_slot(
    db: asyncpg.Connection,
) -> None:
    limited = await _add_webhook(db, rate_limit_per_minute=60)
    await _add_pending(db, limited, 10)
    dispatcher = uuid4()
    first = await claim_webhooks(
        db, dispatcher=dispatcher, limit=100, per_subscriber=16, busy={}, lease_s=60.0
    )
    assert len(first.rows) == 3
    second = await claim_webhooks(
        db, dispatcher=dispatcher, limit=100, per_subscriber=16, busy={}, lease_s=60.0
    )
    assert second.rows == []
    # Three requests at 1/s: the next one is allowed about a second after the burst.
    assert second.wake_at is not None
    wait_s = (second.wake_at - datetime.now(UTC)).total_seconds()
    assert 0.5 < wait_s <= 1.05, wait_s
    # Its slot comes back on time: one row more, not a new burst.
    await db.execute(
        "UPDATE subscriber_rates SET next_at = next_at - interval '1 second', "
        "opens_at = opens_at - interval '1 second'"
    )
    assert len(await _claim(db, dispatcher)) == 1


async def test_a_paused_webhook_is_skipped_and_says_when_it_opens(db: asyncpg.Connection) -> None:
    until = datetime.now(UTC) + timedelta(seconds=30)
    paused, other = await _add_webhook(db, paused_until=until), await _add_webhook(db)
    await _add_pending(db, paused, 3)
    others = await _add_pending(db, other, 3)
    claim = await claim_webhooks(db, dispatcher=uuid4(), limit=100, per_subscriber=16, busy={}, lease_s=60.0)
    assert sorted(row["uuid"] for row in claim.rows) == sorted(others)
    assert claim.wake_at == until


async def test_an_ordered_webhook_gives_its_oldest_pending_deliveries_only_with_none_in_flight(
    db: asyncpg.Connection,
) -> None:
    ordered = await _add_webhook(db, ordered=True)
    queued = await _add_pending(db, ordered, 4)
    # The oldest waits for its retry: nothing later goes.
    await db.execute(
        "UPDATE deliveries SET next_attempt_at = now() + interval '1 hour' WHERE uuid = $1", queued[0]
    )
    dispatcher = uuid4()
    assert await _claim(db, dispatcher) == []
    await db.execute("UPDATE deliveries SET next_attempt_at = now() WHERE uuid = $1", queued[0])
    assert await _claim(db, dispatcher, busy={ordered: 1}) == []  # one in flight here
    # A run in recording order, up to the first row not due.
    await db.execute(
        "UPDATE deliveries SET next_attempt_at = now() + interval '1 hour' WHERE uuid = $1", queued[3]
    )
    claim = await claim_webhooks(
        db, dispatcher=dispatcher, limit=100, per_subscriber=16, busy={}, lease_s=60.0
    )
    assert [row["uuid"] for row in sorted(claim.rows, key=lambda r: r["seq"])] == queued[:3]


async def test_counts_are_published_only_while_another_dispatcher_is_live_and_bound_its_claims(
    db: asyncpg.Connection,
) -> None:
    hook = await _add_webhook(db)
    await _add_pending(db, hook, 40)
    alone, other = uuid4(), uuid4()
    claim = await claim_webhooks(db, dispatcher=alone, limit=5, per_subscriber=16, busy={}, lease_s=60.0)
    assert not claim.others_live
    assert await db.fetchval("SELECT count(*) FROM dispatcher_inflight") == 0

    # Another one announces itself: the next claim publishes, and is told to serialize.
    assert not await publish_in_flight(db, dispatcher=other, busy={}, lease_s=60.0)
    claim = await claim_webhooks(
        db, dispatcher=alone, limit=5, per_subscriber=16, busy={hook: 5}, lease_s=60.0
    )
    assert claim.others_live
    assert len(claim.rows) == 5
    published = await db.fetchrow(
        "SELECT subscriber_uuids, counts FROM dispatcher_inflight WHERE dispatcher_uuid = $1", alone
    )
    assert published is not None
    assert (published["subscriber_uuids"], published["counts"]) == ([hook], [10])
    # The other one gets what is left of the bound: 16 - 10.
    assert len(await _claim(db, other)) == 6


# -- the lane: rate-limited webhooks that wait cost the walk nothing ----------------------------


async def _parked(db: asyncpg.Connection, subscriber: UUID) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE subscriber_uuid = $1 AND status = 'pending' AND throttled",
        subscriber,
    )
    return count


async def _lane_entry(db: asyncpg.Connection, subscriber: UUID) -> datetime | None:
    opens_at: datetime | None = await db.fetchval(
        "SELECT opens_at FROM subscriber_rates WHERE subscriber_uuid = $1", subscriber
    )
    return opens_at


async def _let_time_pass(db: asyncpg.Connection, seconds: float) -> None:
    """Move every rate slot and lane entry ``seconds`` into the past, as if that time had gone by."""
    await db.execute(
        "UPDATE subscriber_rates SET next_at = next_at - make_interval(secs => $1), "
        "opens_at = opens_at - make_interval(secs => $1)",
        seconds,
    )


async def _analyzed_claim(db: asyncpg.Connection, dispatcher: UUID) -> dict[str, Any]:
    """The plan of a claim, run and rolled back, with the rows each node gave."""
    transaction = db.transaction()
    await transaction.start()
    try:
        text = await db.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM_WEBHOOKS,
            *([], [], 16, 100, uuid4(), 60.0, dispatcher),
            *([], [], 16),
        )
    finally:
        await transaction.rollback()
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    return plan


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = node.get("Plans", [])
    assert isinstance(children, list)
    return [node, *(n for child in children for n in _plan_nodes(child))]


async def test_waiting_rate_limited_webhooks_are_parked_once_and_then_not_read_by_claims(
    db: asyncpg.Connection,
) -> None:
    healthy = await _add_webhook(db)
    limited = [await _add_webhook(db, rate_limit_per_minute=60) for _ in range(200)]
    await db.execute(
        "INSERT INTO subscriber_rates (subscriber_uuid, next_at) "
        "SELECT u, now() + interval '1 hour' FROM unnest($1::uuid[]) AS u",
        limited,
    )
    for subscriber in limited:
        await _add_pending(db, subscriber, 5)
    await _add_pending(db, healthy, 10)
    dispatcher = uuid4()

    # The first claim meets each waiting webhook once, parks its rows and stamps when it opens.
    first = await _claim(db, dispatcher)
    assert len(first) == 10
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending' AND throttled") == 1000
    opens_at = await _lane_entry(db, limited[0])
    assert opens_at is not None
    assert timedelta(minutes=59) < opens_at - datetime.now(UTC) < timedelta(hours=1)

    # From then on a claim walks the healthy webhook alone and finds nothing in the lane.
    await _add_pending(db, healthy, 10)
    await db.execute("SET plan_cache_mode = force_generic_plan")  # as the dispatcher's connection
    plan = await _analyzed_claim(db, dispatcher)
    nodes = _plan_nodes(plan)
    walked = [n for n in nodes if n["Node Type"] == "Recursive Union"]
    assert [n["Actual Rows"] for n in walked] == [2]  # the healthy webhook, then the end
    # The lane's read (opens_at <= now()) gives nothing; the wake's (> now(), its first) one row.
    lane = {
        str(n["Index Cond"]): n["Actual Rows"]
        for n in nodes
        if n.get("Index Name") == "ix_subscriber_rates_opens_at"
    }
    assert sorted(lane.values()) == [0, 1], lane
    parked_reads = [n for n in nodes if n.get("Index Name") == "ix_deliveries_throttled"]
    assert all(n["Actual Rows"] == 0 for n in parked_reads)
    assert await _parked(db, limited[0]) == 5


async def test_the_lane_serves_a_waiting_webhook_at_its_rate_and_then_lets_it_go(
    db: asyncpg.Connection,
) -> None:
    limited = await _add_webhook(db, rate_limit_per_minute=60)
    queued = await _add_pending(db, limited, 6)
    dispatcher = uuid4()
    assert await _claim(db, dispatcher) == queued[:3]  # the burst
    assert await _parked(db, limited) == 3
    lane_at = await _lane_entry(db, limited)
    assert lane_at is not None
    assert timedelta(seconds=0.5) < lane_at - datetime.now(UTC) <= timedelta(seconds=1.05)
    assert await _claim(db, dispatcher) == []  # not yet

    # A row recorded meanwhile joins the parked ones: the lane serves them oldest first.
    late = await _add_pending(db, limited, 1)
    assert await _claim(db, dispatcher) == []
    assert await _parked(db, limited) == 4
    for expected in [*queued[3:], *late]:
        await _let_time_pass(db, 1.0)
        assert await _claim(db, dispatcher) == [expected]
    # Nothing left parked: the webhook leaves the lane; its next rows are met by the walk again.
    assert await _parked(db, limited) == 0
    assert await _lane_entry(db, limited) is None
    await _let_time_pass(db, 10.0)
    again = await _add_pending(db, limited, 1)
    assert await _claim(db, dispatcher) == again


async def _burst_then_parked(db: asyncpg.Connection) -> tuple[UUID, UUID]:
    """A webhook at 60/min with 5 rows, after a claim took its burst of 3 and parked the other 2."""
    limited = await _add_webhook(db, rate_limit_per_minute=60)
    await _add_pending(db, limited, 5)
    dispatcher = uuid4()
    assert len(await _claim(db, dispatcher)) == 3
    return limited, dispatcher


async def _sweep(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        await sweep_expired_controls(engine)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class _Held:
    uuid: UUID
    lease_token: UUID
    subscriber_uuid: UUID


async def test_a_delivery_back_in_the_queue_is_not_parked_until_a_claim_meets_it(
    db: asyncpg.Connection, database_url: str
) -> None:
    limited, dispatcher = await _burst_then_parked(db)
    await _let_time_pass(db, 1.0)
    (from_lane,) = await _claim(db, dispatcher)
    # Handed back (a stop) or released (a lease that expired): pending again, out of the lane.
    token = await db.fetchval("SELECT lease_token FROM deliveries WHERE uuid = $1", from_lane)
    engine = create_engine(database_url, pool_size=1)
    try:
        assert await hand_back(engine, [_Held(from_lane, token, limited)]) == 1
    finally:
        await engine.dispose()
    row = await db.fetchrow("SELECT status, throttled FROM deliveries WHERE uuid = $1", from_lane)
    assert row is not None
    assert (row["status"], row["throttled"]) == ("pending", False)
    # The next claim finds its slot closed and parks it with the others.
    assert await _claim(db, dispatcher) == []
    assert await _parked(db, limited) == 2


async def test_a_paused_rate_limited_webhook_waits_in_the_lane_until_the_pause_ends(
    db: asyncpg.Connection,
) -> None:
    limited, dispatcher = await _burst_then_parked(db)
    until = datetime.now(UTC) + timedelta(seconds=30)
    await db.execute("UPDATE subscribers SET paused_until = $2 WHERE uuid = $1", limited, until)
    await _let_time_pass(db, 1.0)
    claim = await claim_webhooks(
        db, dispatcher=dispatcher, limit=100, per_subscriber=16, busy={}, lease_s=60.0
    )
    assert claim.rows == []
    assert await _lane_entry(db, limited) == until
    assert claim.wake_at == until


async def test_a_lane_entry_of_a_webhook_no_longer_rate_limited_is_cleared_and_its_rows_walked_again(
    db: asyncpg.Connection, database_url: str
) -> None:
    limited, dispatcher = await _burst_then_parked(db)
    assert await _parked(db, limited) == 2
    # Changed behind the API's back (the API returns the rows itself): the lane clears the entry...
    await db.execute("UPDATE subscribers SET rate_limit_per_minute = NULL WHERE uuid = $1", limited)
    await _let_time_pass(db, 1.0)
    assert await _claim(db, dispatcher) == []
    assert await _lane_entry(db, limited) is None
    # ...and the sweep hands the rows back to the walk.
    await _sweep(database_url)
    assert await _parked(db, limited) == 0
    assert len(await _claim(db, dispatcher)) == 2


async def test_the_sweep_keeps_the_slots_of_webhooks_with_parked_rows(
    db: asyncpg.Connection, database_url: str
) -> None:
    limited = await _add_webhook(db, rate_limit_per_minute=60)
    idle = await _add_webhook(db, rate_limit_per_minute=60)
    await _add_pending(db, limited, 5)
    await _add_pending(db, idle, 1)
    dispatcher = uuid4()
    await _claim(db, dispatcher)
    await _let_time_pass(db, 60.0)  # both slots are long past
    await _sweep(database_url)
    assert await _lane_entry(db, limited) is not None
    assert await db.fetchval("SELECT count(*) FROM subscriber_rates WHERE subscriber_uuid = $1", idle) == 0
    assert await _parked(db, limited) == 2
    assert len(await _claim(db, dispatcher)) == 2  # after a quiet minute both at once, from the lane
