"""Pending deliveries of a subscriber deleted or disabled while an ingest that matched it was still
open: claims skip them, so a sweep settles them as the subscriber's own change would have."""

from __future__ import annotations

from collections import Counter
from uuid import UUID, uuid4

import asyncpg
import orjson

from service.core.analytics import Anonymizer
from service.core.custom_schemas import SchemaCache
from service.core.events import RecordContext, register_events
from service.db import asyncpg_dsn
from service.outbox import settle_orphans
from service.schemas.events import validate_event
from tests.support.api import create_webhook
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, wait_for_statuses
from tests.support.event_samples import sample_event

EVENT_TYPE = "project:created"


async def _delivery_states(db: asyncpg.Connection) -> Counter[tuple[UUID, str, str | None]]:
    rows = await db.fetch("SELECT subscriber_uuid, status, last_error, next_attempt_at FROM deliveries")
    # A settled row is not due any more.
    assert all(r["next_attempt_at"] is None for r in rows if r["status"] in ("failed", "cancelled"))
    return Counter((r["subscriber_uuid"], r["status"], r["last_error"]) for r in rows)


async def test_rows_an_ingest_commits_after_a_delete_or_disable_are_settled(
    herald: RunningApp, database_url: str, db: asyncpg.Connection
) -> None:
    client = herald.client
    subscriptions = [{"event_type": EVENT_TYPE}]
    kept, deleted, disabled = [
        UUID((await create_webhook(client, subscriptions=subscriptions, name=name))["uuid"])
        for name in ("kept", "deleted", "disabled")
    ]
    event = validate_event(orjson.dumps(sample_event(EVENT_TYPE)))
    ctx = RecordContext(Anonymizer(b"test-key"), UUID(int=1), telemetry_enabled=False, schemas=SchemaCache())

    ingest = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with ingest.transaction():
            [recorded] = await register_events(ingest, ctx, [event])  # matched all three, not committed
            assert recorded.deliveries == 3
            # Neither change waits for the open ingest, and neither sees its rows.
            assert (await client.delete(f"/api/v1/subscribers/{deleted}")).status_code == 204
            patched = await client.patch(f"/api/v1/subscribers/{disabled}", json={"enabled": False})
            assert patched.status_code == 200, patched.text
    finally:
        await ingest.close()
    # The race: both rows are pending, and no claim would ever take them.
    assert await _delivery_states(db) == {
        (kept, "pending", None): 1,
        (deleted, "pending", None): 1,
        (disabled, "pending", None): 1,
    }

    assert await settle_orphans(herald.state.engine) == 2
    assert await _delivery_states(db) == {
        (kept, "pending", None): 1,
        (deleted, "cancelled", "subscriber deleted"): 1,
        (disabled, "failed", "subscriber disabled"): 1,
    }
    assert await settle_orphans(herald.state.engine) == 0


async def _add_webhook(db: asyncpg.Connection, *, enabled: bool) -> UUID:
    uuid = uuid4()
    await db.execute(
        "INSERT INTO subscribers (uuid, kind, name, url, secret, enabled) "
        "VALUES ($1, 'webhook', 'hook', 'http://127.0.0.1:9/hook', 'whsec_test', $2)",
        uuid,
        enabled,
    )
    return uuid


async def _add_deliveries(db: asyncpg.Connection, subscriber: UUID, count: int, status: str) -> None:
    await db.execute(
        "INSERT INTO deliveries (event_uuid, event_type, subscriber_uuid, subscriber_kind, payload, status) "
        "SELECT gen_random_uuid(), $4, $1, 'webhook', '{}', $3 FROM generate_series(1, $2)",
        subscriber,
        count,
        status,
        EVENT_TYPE,
    )


async def test_the_dispatcher_settles_orphans_when_it_starts_and_leaves_the_rest(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    disabled = await _add_webhook(db, enabled=False)
    gone = uuid4()  # no such subscriber any more
    await _add_deliveries(db, disabled, 2, "pending")
    await _add_deliveries(db, disabled, 1, "delivered")
    await _add_deliveries(db, gone, 3, "pending")
    # An expired lease is the lease sweep's business; an unexpired one is left alone by both.
    await _add_deliveries(db, gone, 1, "delivering")
    await db.execute(
        "UPDATE deliveries SET lease_expires_at = now() + interval '1 hour' WHERE status = 'delivering'"
    )

    async with app_factory(**FAST):
        await wait_for_statuses(db, {"failed": 2, "delivered": 1, "cancelled": 3, "delivering": 1})
    assert await _delivery_states(db) == {
        (disabled, "failed", "subscriber disabled"): 2,
        (disabled, "delivered", None): 1,
        (gone, "cancelled", "subscriber deleted"): 3,
        (gone, "delivering", None): 1,
    }
