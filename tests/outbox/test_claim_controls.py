"""The webhook claim's controls, statement by statement: rate slots, pauses, order, published counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from service.outbox import claim_webhooks, publish_in_flight


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
    await db.execute("UPDATE subscriber_rates SET next_at = next_at - interval '1 second'")
    assert len(await _claim(db, dispatcher)) == 1


async def test_a_paused_webhook_is_skipped_and_says_when_it_opens(db: asyncpg.Connection) -> None:
    until = datetime.now(UTC) + timedelta(seconds=30)
    paused, other = await _add_webhook(db, paused_until=until), await _add_webhook(db)
    await _add_pending(db, paused, 3)
    others = await _add_pending(db, other, 3)
    claim = await claim_webhooks(db, dispatcher=uuid4(), limit=100, per_subscriber=16, busy={}, lease_s=60.0)
    assert sorted(row["uuid"] for row in claim.rows) == sorted(others)
    assert claim.wake_at == until


async def test_an_ordered_webhook_gives_its_oldest_pending_delivery_only_with_none_in_flight(
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
    assert await _claim(db, dispatcher) == [queued[0]]


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
