"""The dispatcher's queue statements: claim due deliveries, release expired leases, hand back.

A claim turns ``pending`` rows into ``delivering`` with a lease (``lease_expires_at``) and a
``lease_token`` naming this claim; every later write of the claimant is guarded by
``status = 'delivering' AND lease_token = <token>``, so a late completion from an expired
lease, or of a delivery cancelled meanwhile, changes nothing. Rows are picked with
``FOR UPDATE SKIP LOCKED``, so several dispatchers (replicas) share one queue without
taking the same row twice. Each function runs one statement in its own short transaction;
the webhook claim, the hot path, on the dispatcher's own asyncpg connection in autocommit.

A lease that expired (its process died) is turned back into ``pending``, due now, by
:func:`release_expired` rather than claimed directly: the row then goes through the same
per-subscriber bounds as every other due row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.common.channels import DELIVERIES_CHANNEL
from service.delivery.webhook import WebhookTarget, signing_secrets, webhook_target

EXPIRED_BATCH_MAX = 1000


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this process holds a lease on, with what sending it needs."""

    uuid: UUID
    lease_token: UUID
    event_uuid: UUID
    event_type: str
    subscriber_uuid: UUID
    subscriber_kind: str
    payload: str
    """The stored payload as JSON text, exactly as rendered when the event was recorded."""
    attempts_count: int
    target: WebhookTarget | None = None
    """The webhook as it is at claim time (``None`` for other kinds)."""

    @property
    def attempt_number(self) -> int:
        """The number of the attempt about to be made (it keeps counting across redeliveries)."""
        return self.attempts_count + 1


# Subscribers with pending rows are found by a skip scan over ix_deliveries_subscriber_due (one
# index descent per such subscriber, however long its backlog); each enabled one that has free
# slots in this process gives at most that many of its oldest due rows. A saturated subscriber
# is never read past, so a hanging endpoint's backlog costs the others nothing. The oldest rows
# win when the global limit cuts; rows locked but cut are unlocked when the statement ends.
# Raw asyncpg (positional parameters): the hot path skips SQLAlchemy and runs in autocommit.
_PENDING_SUBSCRIBERS_CTE = """
pending_subscribers(subscriber_uuid) AS (
    (SELECT subscriber_uuid FROM deliveries WHERE status = 'pending' ORDER BY subscriber_uuid LIMIT 1)
    UNION ALL
    SELECT (SELECT d.subscriber_uuid FROM deliveries d
            WHERE d.status = 'pending' AND d.subscriber_uuid > p.subscriber_uuid
            ORDER BY d.subscriber_uuid LIMIT 1)
    FROM pending_subscribers p WHERE p.subscriber_uuid IS NOT NULL
)"""

_CLAIM_WEBHOOKS_SQL = f"""
WITH RECURSIVE busy AS (
    SELECT * FROM unnest($1::uuid[], $2::integer[])
        AS b(subscriber_uuid, n)
),{_PENDING_SUBSCRIBERS_CTE},
candidates AS (
    SELECT c.uuid, c.next_attempt_at
    FROM pending_subscribers p
    JOIN subscribers s ON s.uuid = p.subscriber_uuid AND s.kind = 'webhook' AND s.enabled
    LEFT JOIN busy b ON b.subscriber_uuid = s.uuid
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        -- A range, not "=": with "=" the planner drops subscriber_uuid from the ORDER BY and may
        -- sort this subscriber's whole backlog. This way ix_deliveries_subscriber_due gives the
        -- order, reading just this subscriber's oldest rows.
        WHERE d.subscriber_uuid >= s.uuid AND d.subscriber_uuid <= s.uuid
          AND d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.subscriber_uuid, d.next_attempt_at
        LIMIT greatest(0, least($3::integer - coalesce(b.n, 0), $4::integer))
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE coalesce(b.n, 0) < $3::integer
),
chosen AS (SELECT uuid FROM candidates ORDER BY next_attempt_at LIMIT $4::integer)
UPDATE deliveries d
SET status = 'delivering', lease_token = $5::uuid, updated_at = now(),
    lease_expires_at = now() + make_interval(secs => $6::float8)
FROM chosen c, subscribers s
WHERE d.uuid = c.uuid AND s.uuid = d.subscriber_uuid
RETURNING d.uuid, d.event_uuid, d.event_type, d.subscriber_uuid, CAST(d.payload AS text) AS payload,
          d.attempts_count, s.name, s.url, s.secret, s.previous_secret,
          coalesce(s.previous_secret_expires_at > now(), false) AS previous_valid,
          s.verify_ssl, s.content_type, s.format
"""  # noqa: S608  (constant fragments; every value is a parameter)

_CLAIM_KIND_SQL = text(
    """
WITH chosen AS (
    SELECT c.uuid
    FROM subscribers s
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        WHERE d.subscriber_uuid >= s.uuid AND d.subscriber_uuid <= s.uuid  -- see _CLAIM_WEBHOOKS_SQL
          AND d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.subscriber_uuid, d.next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE s.kind = :kind AND s.enabled
    ORDER BY c.next_attempt_at
    LIMIT :limit
)
UPDATE deliveries d
SET status = 'delivering', lease_token = :token, updated_at = now(),
    lease_expires_at = now() + make_interval(secs => :lease_s)
FROM chosen c
WHERE d.uuid = c.uuid
RETURNING d.uuid, d.event_uuid, d.event_type, d.subscriber_uuid, CAST(d.payload AS text) AS payload,
          d.attempts_count
"""
)

# A row going back to the queue is pending only if its subscriber can still take it: a disabled
# subscriber's rows fail (recoverable), a deleted subscriber's rows are cancelled. Shared by the
# statements below and by the outcome writer.
REQUEUE_STATUS_SQL = (
    "CASE WHEN s.uuid IS NULL THEN 'cancelled' WHEN NOT s.enabled THEN 'failed' ELSE 'pending' END"
)
REQUEUE_ERROR_SQL = (
    "CASE WHEN s.uuid IS NULL THEN 'subscriber deleted' WHEN NOT s.enabled THEN 'subscriber disabled' "
    "ELSE d.last_error END"
)

_RELEASE_EXPIRED_SQL = text(
    f"""
WITH expired AS (
    SELECT uuid, subscriber_uuid FROM deliveries
    WHERE status = 'delivering' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET status = {REQUEUE_STATUS_SQL}, last_error = {REQUEUE_ERROR_SQL},
    next_attempt_at = CASE WHEN s.enabled THEN now() END,
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
FROM expired e LEFT JOIN subscribers s ON s.uuid = e.subscriber_uuid
WHERE d.uuid = e.uuid
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)

_HAND_BACK_SQL = text(
    f"""
WITH h AS (
    SELECT * FROM unnest(CAST(:uuids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:subscribers AS uuid[]))
        AS h(uuid, token, subscriber_uuid)
)
UPDATE deliveries d
SET status = {REQUEUE_STATUS_SQL}, last_error = {REQUEUE_ERROR_SQL},
    next_attempt_at = CASE WHEN s.enabled THEN now() END,
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
FROM h LEFT JOIN subscribers s ON s.uuid = h.subscriber_uuid
WHERE d.uuid = h.uuid AND d.status = 'delivering' AND d.lease_token = h.token
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)

# Pending rows whose subscriber is gone or disabled. Deleting or disabling a subscriber settles
# its pending rows in the same transaction, but an ingest that matched the subscriber just before
# can commit rows after that: claims skip them (deleted or disabled subscribers are not joined),
# so without this sweep they would stay pending for ever. One index descent per subscriber with
# pending rows finds them; the outcome is the one the subscriber's own change would have given.
# (The analytics subscriber is never disabled: telemetry being off is decided at claim time.)
_SETTLE_ORPHANS_SQL = text(
    f"""
WITH RECURSIVE {_PENDING_SUBSCRIBERS_CTE},
orphaned AS (
    SELECT p.subscriber_uuid, s.uuid IS NULL AS deleted
    FROM pending_subscribers p LEFT JOIN subscribers s ON s.uuid = p.subscriber_uuid
    WHERE p.subscriber_uuid IS NOT NULL AND (s.uuid IS NULL OR NOT s.enabled)
)
UPDATE deliveries d
SET status = CASE WHEN o.deleted THEN 'cancelled' ELSE 'failed' END,
    last_error = CASE WHEN o.deleted THEN 'subscriber deleted' ELSE 'subscriber disabled' END,
    next_attempt_at = NULL, updated_at = now()
FROM orphaned o
WHERE d.subscriber_uuid = o.subscriber_uuid AND d.status = 'pending'
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)

NOTIFY_SQL = text(f"SELECT pg_notify('{DELIVERIES_CHANNEL}', '')")


async def claim_webhooks(
    conn: asyncpg.Connection,
    *,
    limit: int,
    per_subscriber: int,
    busy: Mapping[UUID, int],
    lease_s: float,
) -> list[ClaimedDelivery]:
    """Claim at most ``limit`` due webhook deliveries, oldest first, in one autocommit statement.

    ``busy`` counts this process's deliveries in flight per subscriber: a subscriber gets at
    most ``per_subscriber - busy`` rows, so nothing claimed waits in memory for a slot.
    Disabled and deleted subscribers are skipped. The subscriber's url, format and secrets
    are read in the same statement, i.e. as they are at send time.
    """
    if limit <= 0:
        return []
    token = uuid4()
    rows = await conn.fetch(
        _CLAIM_WEBHOOKS_SQL, list(busy), list(busy.values()), per_subscriber, limit, token, lease_s
    )
    return [
        ClaimedDelivery(
            uuid=row["uuid"],
            lease_token=token,
            event_uuid=row["event_uuid"],
            event_type=row["event_type"],
            subscriber_uuid=row["subscriber_uuid"],
            subscriber_kind="webhook",
            payload=row["payload"],
            attempts_count=row["attempts_count"],
            target=webhook_target(
                subscriber_uuid=row["subscriber_uuid"],
                name=row["name"],
                url=row["url"],
                secrets=signing_secrets(row["secret"], row["previous_secret"], row["previous_valid"]),
                verify_ssl=row["verify_ssl"],
                content_type=row["content_type"],
                fmt=row["format"],
            ),
        )
        for row in rows
    ]


async def claim_kind(engine: AsyncEngine, kind: str, *, limit: int, lease_s: float) -> list[ClaimedDelivery]:
    """Claim at most ``limit`` due deliveries of enabled subscribers of ``kind`` (batch deliverers)."""
    if limit <= 0:
        return []
    token = uuid4()
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                _CLAIM_KIND_SQL, {"kind": kind, "limit": limit, "token": token, "lease_s": lease_s}
            )
        ).all()
    return [
        ClaimedDelivery(
            uuid=row.uuid,
            lease_token=token,
            event_uuid=row.event_uuid,
            event_type=row.event_type,
            subscriber_uuid=row.subscriber_uuid,
            subscriber_kind=kind,
            payload=row.payload,
            attempts_count=row.attempts_count,
        )
        for row in rows
    ]


async def release_expired(engine: AsyncEngine, *, limit: int = EXPIRED_BATCH_MAX) -> int:
    """Put deliveries whose lease expired (their process died) back in the queue, due now.

    Returns how many were released; their attempt is not counted (none was recorded).
    """
    async with engine.begin() as conn:
        return len((await conn.execute(_RELEASE_EXPIRED_SQL, {"limit": limit})).all())


async def settle_orphans(engine: AsyncEngine) -> int:
    """Settle pending deliveries of deleted (``cancelled``) or disabled (``failed``) subscribers.

    Returns how many changed (see ``_SETTLE_ORPHANS_SQL`` for how such rows come about).
    """
    async with engine.begin() as conn:
        return len((await conn.execute(_SETTLE_ORPHANS_SQL)).all())


async def hand_back(engine: AsyncEngine, claimed: Sequence[ClaimedDelivery]) -> int:
    """Return unfinished deliveries to the queue (``pending``, due now, lease cleared) on stop.

    Only rows still held under the same lease change; returns how many did.
    """
    if not claimed:
        return 0
    params = {
        "uuids": [c.uuid for c in claimed],
        "tokens": [c.lease_token for c in claimed],
        "subscribers": [c.subscriber_uuid for c in claimed],
    }
    async with engine.begin() as conn:
        count = len((await conn.execute(_HAND_BACK_SQL, params)).all())
        # Another replica may take them over at once.
        await conn.execute(NOTIFY_SQL)
    return count
