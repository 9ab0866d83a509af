"""Every statement that changes a delivery's state, by name; the operations of the outbox run them.

Statuses are written as literals (``status = 'pending'``): the partial indexes of ``deliveries``
are defined on those literal predicates, and the planner only uses a partial index whose
predicate it can match in the query's text. Reasons come from :class:`~service.outbox.states.Reason`,
formatted in as constants, so the strings exist once.

The webhook claim (``CLAIM_WEBHOOKS``) runs on raw asyncpg with positional parameters; every
other statement is a SQLAlchemy ``text()`` with named ones.
"""

from __future__ import annotations

from sqlalchemy import text

from service.common.channels import DELIVERIES_CHANNEL
from service.outbox.states import Reason
from service.schemas.deliveries import delivery_columns


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_DISABLED = _literal(Reason.SUBSCRIBER_DISABLED)
_DELETED = _literal(Reason.SUBSCRIBER_DELETED)
_TELEMETRY_DISABLED = _literal(Reason.TELEMETRY_DISABLED)

NOTIFY = text(f"SELECT pg_notify('{DELIVERIES_CHANNEL}', '')")
"""Wakes every dispatcher (on commit): something became due now."""

# -- claims -------------------------------------------------------------------------------------

# Subscribers with pending rows are found by a skip scan over ix_deliveries_subscriber_due (one
# index descent per such subscriber, however long its backlog).
_PENDING_SUBSCRIBERS_CTE = """
pending_subscribers(subscriber_uuid) AS (
    (SELECT subscriber_uuid FROM deliveries WHERE status = 'pending' ORDER BY subscriber_uuid LIMIT 1)
    UNION ALL
    SELECT (SELECT d.subscriber_uuid FROM deliveries d
            WHERE d.status = 'pending' AND d.subscriber_uuid > p.subscriber_uuid
            ORDER BY d.subscriber_uuid LIMIT 1)
    FROM pending_subscribers p WHERE p.subscriber_uuid IS NOT NULL
)"""

# Each enabled webhook that has free slots in this process gives at most that many of its oldest
# due rows. A saturated subscriber is never read past, so a hanging endpoint's backlog costs the
# others nothing. The oldest rows win when the global limit cuts; rows locked but cut are unlocked
# when the statement ends. $1/$2: busy subscribers and their counts, $3: per-subscriber bound,
# $4: limit, $5: lease token, $6: lease seconds.
CLAIM_WEBHOOKS = f"""
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
          s.verify_ssl, s.content_type, s.format, s.headers
"""  # noqa: S608  (constant fragments; every value is a parameter)

CLAIM_KIND = text(
    """
WITH chosen AS (
    SELECT c.uuid
    FROM subscribers s
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        WHERE d.subscriber_uuid >= s.uuid AND d.subscriber_uuid <= s.uuid  -- see CLAIM_WEBHOOKS
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

# -- back to the queue --------------------------------------------------------------------------

# A row going back to the queue is pending only if its subscriber can still take it: a disabled
# subscriber's rows fail (recoverable), a deleted subscriber's rows are cancelled; either way with
# the reason its subscriber's own change gives. ``s`` is the subscriber LEFT JOINed, ``d`` the row.
_REQUEUE_STATUS = (
    "CASE WHEN s.uuid IS NULL THEN 'cancelled' WHEN NOT s.enabled THEN 'failed' ELSE 'pending' END"
)
_REQUEUE_ERROR = (
    f"CASE WHEN s.uuid IS NULL THEN {_DELETED} WHEN NOT s.enabled THEN {_DISABLED} ELSE d.last_error END"
)
_REQUEUE_SET = f"""
SET status = {_REQUEUE_STATUS}, last_error = {_REQUEUE_ERROR},
    next_attempt_at = CASE WHEN s.enabled THEN now() END,
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()"""

RELEASE_EXPIRED = text(
    f"""
WITH expired AS (
    SELECT uuid, subscriber_uuid FROM deliveries
    WHERE status = 'delivering' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d{_REQUEUE_SET}
FROM expired e LEFT JOIN subscribers s ON s.uuid = e.subscriber_uuid
WHERE d.uuid = e.uuid
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)

HAND_BACK = text(
    f"""
WITH h AS (
    SELECT * FROM unnest(CAST(:uuids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:subscribers AS uuid[]))
        AS h(uuid, token, subscriber_uuid)
)
UPDATE deliveries d{_REQUEUE_SET}
FROM h LEFT JOIN subscribers s ON s.uuid = h.subscriber_uuid
WHERE d.uuid = h.uuid AND d.status = 'delivering' AND d.lease_token = h.token
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)

DELIVERY_STATE = text("SELECT status, subscriber_uuid FROM deliveries WHERE uuid = :uuid")
# FOR SHARE: a concurrent disable (which locks the subscriber row first) waits for the requeue or
# is waited for, so it either sees the requeued rows and fails them, or is seen.
SUBSCRIBER_STATE = text("SELECT kind, enabled FROM subscribers WHERE uuid = :uuid FOR SHARE")

REDELIVER = text(
    f"""
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), lease_expires_at = NULL, lease_token = NULL,
    updated_at = now()
WHERE uuid = :uuid AND status NOT IN ('delivering', 'cancelled')
RETURNING {delivery_columns()}
"""  # noqa: S608  (a constant column list)
)

RECOVER = text(
    """
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), updated_at = now()
WHERE subscriber_uuid = :uuid AND status = 'failed'
  AND created_at >= :since AND (CAST(:until AS timestamptz) IS NULL OR created_at < :until)
"""
)

# -- completions --------------------------------------------------------------------------------

LOCK_SUBSCRIBERS = text(
    "SELECT uuid FROM subscribers WHERE uuid = ANY(CAST(:uuids AS uuid[])) ORDER BY uuid FOR NO KEY UPDATE"
)

# A retry of a subscriber disabled or deleted while the attempt was in flight is not requeued.
COMPLETE = text(
    f"""
WITH o AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:subscribers AS uuid[]),
        CAST(:statuses AS text[]), CAST(:attempts AS integer[]), CAST(:next_at AS timestamptz[]),
        CAST(:errors AS text[]), CAST(:finished AS timestamptz[])
    ) AS o(uuid, token, subscriber_uuid, status, attempts, next_attempt_at, last_error, finished_at)
)
UPDATE deliveries d
SET status = CASE WHEN s.uuid IS NULL OR o.status = 'pending' THEN {_REQUEUE_STATUS} ELSE o.status END,
    last_error = CASE WHEN s.uuid IS NULL OR (o.status = 'pending' AND NOT s.enabled) THEN {_REQUEUE_ERROR}
                      ELSE o.last_error END,
    next_attempt_at = CASE WHEN o.status = 'pending' AND s.enabled THEN o.next_attempt_at END,
    delivered_at = CASE WHEN o.status = 'delivered' AND s.uuid IS NOT NULL THEN o.finished_at
                        ELSE d.delivered_at END,
    attempts_count = greatest(d.attempts_count, o.attempts),
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
FROM o LEFT JOIN subscribers s ON s.uuid = o.subscriber_uuid
WHERE d.uuid = o.uuid AND d.status = 'delivering' AND d.lease_token = o.token
RETURNING d.uuid, d.status
"""  # noqa: S608  (constant fragments, no input)
)

# The request did happen, so its attempt is recorded even when the completion was stale; only a
# delivery removed meanwhile (retention) has nowhere to record it.
INSERT_ATTEMPTS = text(
    """
INSERT INTO delivery_attempts
    (delivery_uuid, number, started_at, duration_ms, status_code, error, response_body)
SELECT a.* FROM unnest(
    CAST(:uuids AS uuid[]), CAST(:numbers AS integer[]), CAST(:started AS timestamptz[]),
    CAST(:durations AS double precision[]), CAST(:codes AS integer[]), CAST(:errors AS text[]),
    CAST(:bodies AS text[])
) AS a(delivery_uuid, number, started_at, duration_ms, status_code, error, response_body)
WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.uuid = a.delivery_uuid)
"""
)

MOVE_FAILURE_CLOCK = text(
    """
WITH u AS (
    SELECT * FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:success AS timestamptz[]), CAST(:failure AS timestamptz[])
    ) AS u(uuid, success_at, failure_since)
)
UPDATE subscribers s
SET last_success_at = greatest(s.last_success_at, u.success_at),
    failing_since = CASE
        WHEN u.failure_since IS NULL THEN NULL
        WHEN u.success_at IS NULL THEN coalesce(s.failing_since, u.failure_since)
        ELSE u.failure_since END
FROM u
WHERE s.uuid = u.uuid AND s.kind = 'webhook'
  -- A healthy webhook's row is rewritten at most once a second, not on every flush.
  AND (u.failure_since IS NOT NULL OR s.failing_since IS NOT NULL OR s.last_success_at IS NULL
       OR s.last_success_at < u.success_at - interval '1 second')
RETURNING s.uuid, s.enabled, s.failing_since
"""
)

# -- what a subscriber's change does to its deliveries ------------------------------------------

# In-flight deliveries of a disabled subscriber finish and are judged by their outcome.
FAIL_PENDING = text(
    f"""
UPDATE deliveries
SET status = 'failed', last_error = {_DISABLED}, next_attempt_at = NULL, updated_at = now()
WHERE subscriber_uuid = :uuid AND status = 'pending'
"""  # noqa: S608  (a constant reason, no input)
)

# Clearing the lease token makes a late completion of an in-flight attempt (which updates by
# token) change nothing.
CANCEL_UNFINISHED = text(
    f"""
UPDATE deliveries
SET status = 'cancelled', last_error = {_DELETED}, next_attempt_at = NULL, lease_expires_at = NULL,
    lease_token = NULL, updated_at = now()
WHERE subscriber_uuid = :uuid AND status IN ('pending', 'delivering')
"""  # noqa: S608  (a constant reason, no input)
)

CANCEL_TELEMETRY = text(
    f"""
UPDATE deliveries
SET status = 'cancelled', last_error = {_TELEMETRY_DISABLED}, next_attempt_at = NULL,
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
WHERE subscriber_kind = 'analytics' AND status IN ('pending', 'delivering')
"""  # noqa: S608  (a constant reason, no input)
)

# Pending rows whose subscriber is gone or disabled; one index descent per subscriber with pending
# rows finds them. The outcome is the one the subscriber's own change would have given. (The
# analytics subscriber is never disabled: telemetry being off is decided at claim time.)
SETTLE_ORPHANS = text(
    f"""
WITH RECURSIVE {_PENDING_SUBSCRIBERS_CTE},
orphaned AS (
    SELECT p.subscriber_uuid, s.uuid IS NULL AS deleted
    FROM pending_subscribers p LEFT JOIN subscribers s ON s.uuid = p.subscriber_uuid
    WHERE p.subscriber_uuid IS NOT NULL AND (s.uuid IS NULL OR NOT s.enabled)
)
UPDATE deliveries d
SET status = CASE WHEN o.deleted THEN 'cancelled' ELSE 'failed' END,
    last_error = CASE WHEN o.deleted THEN {_DELETED} ELSE {_DISABLED} END,
    next_attempt_at = NULL, updated_at = now()
FROM orphaned o
WHERE d.subscriber_uuid = o.subscriber_uuid AND d.status = 'pending'
RETURNING d.uuid
"""  # noqa: S608  (constant fragments, no input)
)
