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


def _pending_subscribers_cte(waiting: str) -> str:
    """Subscribers with rows matching ``waiting`` (a predicate on ``d``), by a skip scan over the
    partial index of that predicate: one index descent per such subscriber, however long its
    backlog."""
    return f"""
pending_subscribers(subscriber_uuid) AS (
    (SELECT d.subscriber_uuid FROM deliveries d WHERE {waiting} ORDER BY d.subscriber_uuid LIMIT 1)
    UNION ALL
    SELECT (SELECT d.subscriber_uuid FROM deliveries d
            WHERE {waiting} AND d.subscriber_uuid > p.subscriber_uuid
            ORDER BY d.subscriber_uuid LIMIT 1)
    FROM pending_subscribers p WHERE p.subscriber_uuid IS NOT NULL
)"""  # noqa: S608  (``waiting`` is one of the constant predicates below)


# The claim walks the rows of ix_deliveries_subscriber_due: pending and not parked by a rate limit.
_WALKED = "d.status = 'pending' AND NOT d.throttled"
_PARKED = "d.status = 'pending' AND d.throttled"

_PUBLISH_CONFLICT = """ON CONFLICT (dispatcher_uuid) DO UPDATE
    SET subscriber_uuids = EXCLUDED.subscriber_uuids, counts = EXCLUDED.counts,
        expires_at = EXCLUDED.expires_at"""

# Whether another live dispatcher has published counts ($7: this one).
_OTHERS_LIVE = """EXISTS (
    SELECT 1 FROM dispatcher_inflight o WHERE o.dispatcher_uuid <> $7::uuid AND o.expires_at > now()
)"""

RATE_BURST = 3
"""A rate-limited webhook may take this many requests at once after a quiet spell (GCRA's burst)."""

ORDERED_RUN = 32
"""An ordered webhook's claim takes at most this many of its next deliveries, sent one after the
other at the receiver's pace (each once the one before was answered 2xx)."""

CIRCUIT_IDLE_RECHECK_S = 5
"""A circuit whose probe is due but whose webhook has nothing due looks again this often at most."""

CLAIM_LOCK_KEY = 0x68657261_6C64  # "herald"
"""The transaction-level advisory lock that webhook claims take, one at a time across replicas."""

BEGIN_AND_LOCK_CLAIMS = f"BEGIN; SELECT pg_advisory_xact_lock({CLAIM_LOCK_KEY})"
"""Opens a webhook claim's transaction while other dispatchers are live: the lock is taken before
:data:`CLAIM_WEBHOOKS`, in a statement of its own, so the claim's snapshot sees every claim
committed before it and the in-flight counts and rate slots it reads are current. A dispatcher
alone needs none of it (two round trips per claim): its claims are one at a time anyway."""

# Each enabled webhook that is not paused, has free slots (here and in the other live
# dispatchers) and, when rate-limited, a free slot now, gives at most that many of its oldest due
# rows. An ordered one gives its oldest pending row by recording order (ix_deliveries_pending_seq),
# and only while the in-flight counts say none is in flight: they count an ordered delivery until
# its outcome is written (the dispatcher holds the webhook until then), and a dead dispatcher's
# row lives two leases, past the release of its leases. A saturated or paused subscriber is never
# read past, so its backlog costs the others nothing. The oldest rows win when the global limit
# cuts.
#
# Webhooks are reached two ways. The walk visits the subscribers with rows in
# ix_deliveries_subscriber_due. The lane visits the rate-limited webhooks whose parked rows may go
# now (subscriber_rates.opens_at <= now(), by ix_subscriber_rates_opens_at) and takes their parked
# rows (ix_deliveries_throttled). Every rate-limited webhook reached parks its due rows left
# unclaimed (throttled = true: out of the walk's index) and gets opens_at: when its next slot
# opens (GCRA: next_at is the theoretical arrival time; a request is allowed while
# next_at - (burst - 1) * interval <= now), or NULL once nothing of it is parked. So a waiting
# webhook costs no claim anything until its slot opens, however many wait.
#
# The same statement advances the rate slots and publishes this dispatcher's counts. It returns
# the claimed rows, each with ``wake_at``: when the earliest paused or rate-limited webhook opens
# again (one row with NULLs when nothing was claimed), and ``others_live``: whether another live
# dispatcher has published counts (then the next claim takes the lock).
# $1/$2: this dispatcher's busy subscribers and their counts, $3: per-subscriber bound, $4: limit,
# $5: lease token, $6: lease seconds, $7: this dispatcher's uuid, $8/$9: this dispatcher's window
# per subscriber (how many it may have in flight), $10: the window of a subscriber not in $8.
_INTERVAL = "make_interval(secs => 60.0 / {per_minute})"  # one slot of a rate-limited webhook
_BURST_SPAN = f"make_interval(secs => ({RATE_BURST} - 1) * 60.0 / {{per_minute}})"

CLAIM_WEBHOOKS = f"""
WITH RECURSIVE busy AS (
    SELECT * FROM unnest($1::uuid[], $2::integer[])
        AS b(subscriber_uuid, n)
),
windows AS (
    SELECT * FROM unnest($8::uuid[], $9::integer[]) AS w(subscriber_uuid, n)
),{_pending_subscribers_cte(_WALKED)},
lane AS (
    SELECT subscriber_uuid FROM subscriber_rates
    WHERE opens_at <= now() ORDER BY opens_at LIMIT $4::integer
),
-- A webhook this dispatcher already has its window's worth of (a hanging one, from its first
-- request) has nothing to give: it costs the walk's descent, not a lookup.
reached AS (
    SELECT p.subscriber_uuid FROM pending_subscribers p
    LEFT JOIN busy b ON b.subscriber_uuid = p.subscriber_uuid
    LEFT JOIN windows wn ON wn.subscriber_uuid = p.subscriber_uuid
    WHERE p.subscriber_uuid IS NOT NULL AND coalesce(b.n, 0) < coalesce(wn.n, $10::integer)
    UNION
    SELECT subscriber_uuid FROM lane
),
elsewhere AS (
    SELECT e.subscriber_uuid, sum(e.n) AS n
    FROM dispatcher_inflight i
    CROSS JOIN LATERAL unnest(i.subscriber_uuids, i.counts) AS e(subscriber_uuid, n)
    WHERE i.dispatcher_uuid <> $7::uuid AND i.expires_at > now()
    GROUP BY e.subscriber_uuid
),
webhooks AS (
    SELECT s.uuid, s.ordered, s.rate_limit_per_minute AS per_minute,
           CASE WHEN s.paused_until > now() THEN s.paused_until END AS paused_until,
           r.next_at, r.opens_at, coalesce(r.opens_at <= now(), false) AS in_lane,
           coalesce(b.n, 0) + coalesce(e.n, 0) AS in_flight, s.circuit_state <> 'closed' AS tripped,
           least($3::integer - coalesce(b.n, 0) - coalesce(e.n, 0),
                 coalesce(wn.n, $10::integer) - coalesce(b.n, 0), g.allowed) AS room, g.allowed
    FROM reached p
    -- One primary-key lookup per webhook reached, whatever the statistics of subscribers say (a
    -- table analyzed before a thousand webhooks were added made a join of it cost 16 ms).
    CROSS JOIN LATERAL (
        SELECT * FROM subscribers s WHERE s.uuid = p.subscriber_uuid AND s.kind = 'webhook' AND s.enabled
        OFFSET 0
    ) s
    LEFT JOIN busy b ON b.subscriber_uuid = s.uuid
    LEFT JOIN elsewhere e ON e.subscriber_uuid = s.uuid
    LEFT JOIN windows wn ON wn.subscriber_uuid = s.uuid
    LEFT JOIN subscriber_rates r ON r.subscriber_uuid = s.uuid AND s.rate_limit_per_minute IS NOT NULL
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.rate_limit_per_minute IS NULL THEN $4::integer
                    WHEN r.next_at IS NULL OR r.next_at <= now() THEN least({RATE_BURST}, $4::integer)
                    ELSE floor({RATE_BURST} - extract(epoch FROM r.next_at - now())
                               * s.rate_limit_per_minute / 60.0)::integer END AS allowed
    ) g
),
-- A webhook whose parked rows wait for a later slot is served by the lane then, not now; one whose
-- circuit is not closed only by its probe.
open_webhooks AS (
    SELECT uuid, ordered, room, allowed, in_flight, in_lane FROM webhooks
    WHERE room > 0 AND paused_until IS NULL AND (opens_at IS NULL OR in_lane) AND NOT tripped
),
-- Each row's turn: the deliveries its webhook has in flight (here and elsewhere) plus its rank
-- among the webhook's rows taken now. The global limit keeps the lowest turns, so free slots go
-- round the webhooks with due work, the one holding fewest first (docs/delivery.md, "Fair share").
candidates AS (
    SELECT c.uuid, c.next_attempt_at,
           w.in_flight + row_number() OVER (PARTITION BY w.uuid ORDER BY c.next_attempt_at) AS turn
    FROM open_webhooks w
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        -- "=" on subscriber_uuid, so that ix_deliveries_subscriber_due's descent is bounded by
        -- next_attempt_at too: it reads this subscriber's oldest due rows and stops at the first
        -- not yet due. (A range on subscriber_uuid alone, which an earlier version used to keep
        -- the planner on this index, read every row of it scheduled later: 0.4 ms per webhook
        -- with 10,000 retries waiting, 54 ms a claim with a million.)
        WHERE d.subscriber_uuid = w.uuid AND {_WALKED} AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT w.room
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE NOT w.ordered AND NOT w.in_lane
),
lane_candidates AS (
    SELECT c.uuid, c.next_attempt_at,
           w.in_flight + row_number() OVER (PARTITION BY w.uuid ORDER BY c.next_attempt_at) AS turn
    FROM open_webhooks w
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        WHERE d.subscriber_uuid = w.uuid AND {_PARKED}
        ORDER BY d.next_attempt_at
        LIMIT w.room
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE NOT w.ordered AND w.in_lane
),
-- An ordered webhook with nothing in flight gives a run: its oldest pending rows by recording
-- order, as long as each is due, at most {ORDERED_RUN} (and its rate slots); the dispatcher sends
-- them one after the other, one request in flight (so one slot, whatever its window), and hands
-- back what follows a failure. Locked rows cut the run where they are.
ordered_runs AS (
    SELECT w.uuid AS subscriber_uuid, r.uuid, r.next_attempt_at, r.n, w.in_flight
    FROM open_webhooks w
    CROSS JOIN LATERAL (
        SELECT h.uuid, h.next_attempt_at, row_number() OVER (ORDER BY h.seq) AS n,
               bool_and(h.next_attempt_at <= now()) OVER (ORDER BY h.seq) AS due
        FROM (
            SELECT h.uuid, h.seq, h.next_attempt_at FROM deliveries h
            WHERE h.subscriber_uuid = w.uuid AND h.status = 'pending'
            ORDER BY h.seq LIMIT least(w.allowed, {ORDERED_RUN})
        ) h
    ) r
    WHERE w.ordered AND w.in_flight = 0 AND r.due
),
ordered_locked AS (
    SELECT d.uuid FROM ordered_runs o JOIN deliveries d ON d.uuid = o.uuid
    WHERE d.status = 'pending'
    FOR UPDATE OF d SKIP LOCKED
),
ordered_candidates AS (
    SELECT o.uuid, o.next_attempt_at, o.in_flight + o.n AS turn
    FROM ordered_runs o
    WHERE NOT EXISTS (
        SELECT 1 FROM ordered_runs g
        WHERE g.subscriber_uuid = o.subscriber_uuid AND g.n <= o.n
          AND NOT EXISTS (SELECT 1 FROM ordered_locked l WHERE l.uuid = g.uuid)
    )
),
-- The probes: at most one delivery of each webhook whose circuit's next probe is due (its oldest
-- due row, parked or not; an ordered one's oldest pending one, with nothing in flight). The
-- subscriber row is taken SKIP LOCKED (the outcome writer or a disable holds it for
-- milliseconds: the probe goes with a later claim), and claims run one at a time while several
-- dispatchers are live, so one probe goes, on one replica.
probe_due AS (
    SELECT p.uuid, p.ordered FROM subscribers p
    WHERE p.circuit_state <> 'closed' AND p.circuit_next_probe_at <= now()
      AND p.kind = 'webhook' AND p.enabled AND NOT coalesce(p.paused_until > now(), false)
    ORDER BY p.circuit_next_probe_at LIMIT $4::integer
    FOR NO KEY UPDATE SKIP LOCKED
),
probe_picks AS (
    SELECT w.uuid AS subscriber_uuid, x.uuid
    FROM probe_due w
    CROSS JOIN LATERAL (
        SELECT u.uuid FROM (
            (SELECT d.uuid, d.next_attempt_at FROM deliveries d
             WHERE d.subscriber_uuid = w.uuid AND {_PARKED} AND d.next_attempt_at <= now()
             ORDER BY d.next_attempt_at LIMIT 1)
            UNION ALL
            (SELECT d.uuid, d.next_attempt_at FROM deliveries d
             WHERE d.subscriber_uuid = w.uuid AND {_WALKED} AND d.next_attempt_at <= now()
             ORDER BY d.next_attempt_at LIMIT 1)
        ) u ORDER BY u.next_attempt_at LIMIT 1
    ) x
    WHERE NOT w.ordered
    UNION ALL
    SELECT w.uuid, h.uuid
    FROM probe_due w
    LEFT JOIN busy b ON b.subscriber_uuid = w.uuid
    LEFT JOIN elsewhere e ON e.subscriber_uuid = w.uuid
    CROSS JOIN LATERAL (
        SELECT h.uuid, h.next_attempt_at FROM deliveries h
        WHERE h.subscriber_uuid = w.uuid AND h.status = 'pending' ORDER BY h.seq LIMIT 1
    ) h
    WHERE w.ordered AND coalesce(b.n, 0) + coalesce(e.n, 0) = 0 AND h.next_attempt_at <= now()
),
probe_candidates AS (
    SELECT d.uuid, d.next_attempt_at, d.subscriber_uuid
    FROM probe_picks p JOIN deliveries d ON d.uuid = p.uuid
    WHERE d.status = 'pending'
    FOR UPDATE OF d SKIP LOCKED
),
-- A due probe that found nothing to send looks again when the webhook's next row falls due, or
-- in {CIRCUIT_IDLE_RECHECK_S} s; one that did is half-open until its deadline (the lease): an
-- outcome that never comes (its dispatcher gone) lets another probe go then.
probed AS (
    UPDATE subscribers s
    SET circuit_state = CASE WHEN c.uuid IS NULL THEN s.circuit_state ELSE 'half-open' END,
        circuit_next_probe_at = CASE
            WHEN c.uuid IS NOT NULL THEN now() + make_interval(secs => $6::float8)
            ELSE least(
                (SELECT min(d.next_attempt_at) FROM deliveries d
                 WHERE d.subscriber_uuid = s.uuid AND d.status = 'pending' AND d.next_attempt_at > now()),
                now() + make_interval(secs => {CIRCUIT_IDLE_RECHECK_S}))
        END
    FROM probe_due w LEFT JOIN probe_candidates c ON c.subscriber_uuid = w.uuid
    WHERE s.uuid = w.uuid
    RETURNING s.circuit_next_probe_at
),
chosen AS (
    SELECT uuid, probe FROM (
        SELECT uuid, next_attempt_at, turn, false AS probe FROM candidates
        UNION ALL SELECT uuid, next_attempt_at, turn, false FROM lane_candidates
        UNION ALL SELECT uuid, next_attempt_at, turn, false FROM ordered_candidates
        UNION ALL SELECT uuid, next_attempt_at, 0, true FROM probe_candidates
    ) c
    ORDER BY turn, next_attempt_at LIMIT $4::integer
),
claimed AS (
    UPDATE deliveries d
    SET status = 'delivering', lease_token = $5::uuid, updated_at = now(),
        lease_expires_at = now() + make_interval(secs => $6::float8)
    FROM chosen c, subscribers s
    WHERE d.uuid = c.uuid AND s.uuid = d.subscriber_uuid
    RETURNING d.uuid, d.event_uuid, d.event_type, d.subscriber_uuid, d.seq, c.probe,
              CAST(d.payload AS text) AS payload, d.attempts_count, s.name, s.url, s.secret,
              s.previous_secret, coalesce(s.previous_secret_expires_at > now(), false) AS previous_valid,
              s.verify_ssl, s.content_type, s.format, s.ordered, s.rate_limit_per_minute,
              s.headers, s.url_from_portal
),
-- Rows another transaction holds are left for a later claim (SKIP LOCKED: no wait, no deadlock).
parked AS (
    UPDATE deliveries d SET throttled = true
    FROM (
        SELECT x.uuid FROM webhooks w
        CROSS JOIN LATERAL (
            SELECT d.uuid FROM deliveries d
            -- As above; every row of a webhook whose circuit is not closed, due or not.
            WHERE d.subscriber_uuid = w.uuid AND {_WALKED}
              AND d.next_attempt_at <= CASE WHEN w.tripped THEN 'infinity' ELSE now() END
            ORDER BY d.next_attempt_at  -- through ix_deliveries_subscriber_due
            FOR UPDATE SKIP LOCKED
        ) x
        WHERE (w.per_minute IS NOT NULL OR w.tripped)
          AND NOT EXISTS (SELECT 1 FROM chosen c WHERE c.uuid = x.uuid)
    ) p
    WHERE d.uuid = p.uuid
    RETURNING d.subscriber_uuid
),
taken AS (
    SELECT subscriber_uuid, count(*)::integer AS n FROM claimed GROUP BY subscriber_uuid
),
-- What stays parked of each webhook the lane reached (what the snapshot shows, locked or not).
left_parked AS (
    SELECT w.uuid FROM webhooks w
    WHERE w.in_lane AND EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.subscriber_uuid = w.uuid AND {_PARKED}
          AND NOT EXISTS (SELECT 1 FROM chosen c WHERE c.uuid = d.uuid)
    )
),
slots AS (
    SELECT w.uuid, w.per_minute, w.paused_until,
           CASE WHEN t.n IS NULL THEN coalesce(w.next_at, now())
                ELSE greatest(w.next_at, now()) + t.n * {_INTERVAL.format(per_minute="w.per_minute")}
           END AS next_at,
           EXISTS (SELECT 1 FROM parked p WHERE p.subscriber_uuid = w.uuid)
               OR EXISTS (SELECT 1 FROM left_parked l WHERE l.uuid = w.uuid) AS waiting,
           t.n IS NOT NULL AS took, w.in_lane
    FROM webhooks w LEFT JOIN taken t ON t.subscriber_uuid = w.uuid
    WHERE w.per_minute IS NOT NULL AND NOT w.tripped
),
rates AS (
    INSERT INTO subscriber_rates AS r (subscriber_uuid, next_at, opens_at)
    SELECT uuid, next_at,
           CASE WHEN waiting THEN greatest(
               next_at - {_BURST_SPAN.format(per_minute="per_minute")}, paused_until, now()
           ) END
    FROM slots
    WHERE took OR waiting OR in_lane
    ON CONFLICT (subscriber_uuid) DO UPDATE SET next_at = EXCLUDED.next_at, opens_at = EXCLUDED.opens_at
    RETURNING r.subscriber_uuid, r.next_at, r.opens_at
),
-- Lane entries of webhooks that are no longer rate-limited enabled webhooks: their parked rows
-- go back to the walk (sweep_expired_controls), which settles or claims them. A webhook whose
-- circuit is not closed leaves the lane too: its rows stay parked until the circuit closes.
left_lane AS (
    UPDATE subscriber_rates SET opens_at = NULL
    -- An array, so the primary key finds them (a join would read the whole table for none).
    WHERE subscriber_uuid = ANY(ARRAY(
        SELECT l.subscriber_uuid FROM lane l
        WHERE NOT EXISTS (
            SELECT 1 FROM webhooks w
            WHERE w.uuid = l.subscriber_uuid AND w.per_minute IS NOT NULL AND NOT w.tripped
        )
    ))
),
-- Only while another dispatcher is live: alone, nobody reads them (a row write per claim saved).
published AS (
    INSERT INTO dispatcher_inflight AS i (dispatcher_uuid, subscriber_uuids, counts, expires_at)
    SELECT * FROM (
        SELECT $7::uuid, coalesce(array_agg(subscriber_uuid), '{{}}'), coalesce(array_agg(n), '{{}}'),
               now() + make_interval(secs => 2 * $6::float8)
        FROM (
            SELECT subscriber_uuid, sum(n)::integer AS n
            FROM (SELECT subscriber_uuid, n FROM busy UNION ALL SELECT subscriber_uuid, n FROM taken) u
            GROUP BY subscriber_uuid
        ) counts
    ) mine
    WHERE {_OTHERS_LIVE}
    {_PUBLISH_CONFLICT}
),
wake AS (
    SELECT min(at) AS wake_at FROM (
        -- A paused webhook that is not rate-limited (a rate-limited one's rows are parked).
        SELECT paused_until AS at FROM webhooks WHERE paused_until IS NOT NULL AND per_minute IS NULL
        UNION ALL
        -- The lane's next entry as this claim found it, and the entries this claim stamped.
        (SELECT opens_at FROM subscriber_rates WHERE opens_at > now() ORDER BY opens_at LIMIT 1)
        UNION ALL
        SELECT opens_at FROM rates WHERE opens_at > now()
        UNION ALL
        -- The next probe of an open circuit, as this claim found them and as it stamped them.
        (SELECT circuit_next_probe_at FROM subscribers
         WHERE circuit_state <> 'closed' AND circuit_next_probe_at > now()
         ORDER BY circuit_next_probe_at LIMIT 1)
        UNION ALL
        SELECT circuit_next_probe_at FROM probed
        UNION ALL
        -- The next slot of the webhooks just claimed for (rows a lock kept from being parked).
        SELECT r.next_at - {_BURST_SPAN.format(per_minute="s.per_minute")}
        FROM rates r JOIN slots s ON s.uuid = r.subscriber_uuid
        WHERE s.took AND r.next_at - {_BURST_SPAN.format(per_minute="s.per_minute")} > now()
    ) a
)
SELECT c.*, w.wake_at, {_OTHERS_LIVE} AS others_live FROM wake w LEFT JOIN claimed c ON true
"""  # noqa: S608  (constant fragments; every value is a parameter)

# The counts a dispatcher publishes when it has no free slot to claim with (its row must not
# expire while its deliveries are in flight); $1/$2: subscribers and counts, $3: dispatcher, $4: lease.
PUBLISH_INFLIGHT = f"""
INSERT INTO dispatcher_inflight AS i (dispatcher_uuid, subscriber_uuids, counts, expires_at)
VALUES ($3::uuid, $1::uuid[], $2::integer[], now() + make_interval(secs => 2 * $4::float8))
{_PUBLISH_CONFLICT}
RETURNING {_OTHERS_LIVE.replace("$7", "$3")} AS others_live
"""  # noqa: S608  (a constant fragment; every value is a parameter)

WITHDRAW_INFLIGHT = text("DELETE FROM dispatcher_inflight WHERE dispatcher_uuid = :dispatcher")

# Parked rows of a webhook without a lane entry go back to the walk, which parks them again if
# the webhook is still rate-limited, or claims or settles them. A claim that clears an entry
# while another claim (not serialized with it: two dispatchers that do not know of each other
# yet) parks rows, and a webhook no longer rate-limited whose entry the lane cleared, leave such
# rows; this is what brings them back.
UNPARK_STRANDED = text(
    f"""
WITH RECURSIVE {_pending_subscribers_cte(_PARKED)}
UPDATE deliveries d SET throttled = false
FROM pending_subscribers p LEFT JOIN subscriber_rates r ON r.subscriber_uuid = p.subscriber_uuid
WHERE d.subscriber_uuid = p.subscriber_uuid AND d.status = 'pending' AND d.throttled
  AND r.opens_at IS NULL
  -- An open circuit's rows stay parked until it closes (outbox/circuits.py).
  AND NOT EXISTS (
      SELECT 1 FROM subscribers s WHERE s.uuid = p.subscriber_uuid AND s.circuit_state <> 'closed'
  )
"""  # noqa: S608  (constant fragments, no input)
)

# A rate slot in the past means the same as none (unless the lane holds rows for it); dead
# dispatchers' rows no longer count.
SWEEP_EXPIRED_CONTROLS = (
    text("DELETE FROM dispatcher_inflight WHERE expires_at < now()"),
    text("DELETE FROM subscriber_rates WHERE next_at < now() AND opens_at IS NULL"),
    UNPARK_STRANDED,
)

# A webhook's rate limit changed or went: its parked rows go back to the walk, which parks them
# again under the new limit or claims them.
UNPARK_SUBSCRIBER = (
    text(
        "UPDATE deliveries SET throttled = false "
        "WHERE subscriber_uuid = :uuid AND status = 'pending' AND throttled"
    ),
    text("UPDATE subscriber_rates SET opens_at = NULL WHERE subscriber_uuid = :uuid"),
)

CLAIM_KIND = text(
    """
WITH chosen AS (
    SELECT c.uuid
    FROM subscribers s
    CROSS JOIN LATERAL (
        SELECT d.uuid, d.next_attempt_at FROM deliveries d
        WHERE d.subscriber_uuid = s.uuid  -- see CLAIM_WEBHOOKS
          AND d.status = 'pending' AND NOT d.throttled AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
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
    next_attempt_at = CASE WHEN s.enabled THEN now() END, throttled = false,
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
SET status = 'pending', next_attempt_at = now(), throttled = false, lease_expires_at = NULL,
    lease_token = NULL, updated_at = now()
WHERE uuid = :uuid AND status NOT IN ('delivering', 'cancelled')
RETURNING {delivery_columns()}
"""  # noqa: S608  (a constant column list)
)

RECOVER = text(
    """
UPDATE deliveries
SET status = 'pending', next_attempt_at = now(), throttled = false, updated_at = now()
WHERE subscriber_uuid = :uuid AND status = 'failed'
  AND created_at >= :since AND (CAST(:until AS timestamptz) IS NULL OR created_at < :until)
"""
)

# -- completions --------------------------------------------------------------------------------

# With each webhook's circuit, which the same transaction moves (outbox/circuits.py).
LOCK_SUBSCRIBERS = text(
    """
SELECT uuid, kind, circuit_state, circuit_since, circuit_next_probe_at, circuit_failures, circuit_probes
FROM subscribers WHERE uuid = ANY(CAST(:uuids AS uuid[])) ORDER BY uuid FOR NO KEY UPDATE
"""
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
    attempts_count = greatest(d.attempts_count, o.attempts), throttled = false,
    lease_expires_at = NULL, lease_token = NULL, updated_at = now()
FROM o LEFT JOIN subscribers s ON s.uuid = o.subscriber_uuid
WHERE d.uuid = o.uuid AND d.status = 'delivering' AND d.lease_token = o.token
RETURNING d.uuid, d.status
"""  # noqa: S608  (constant fragments, no input)
)

# A pause only ever grows: a shorter Retry-After of a request sent before the pause ends nothing.
PAUSE_WEBHOOKS = text(
    """
UPDATE subscribers s
SET paused_until = greatest(s.paused_until, p.until)
FROM unnest(CAST(:uuids AS uuid[]), CAST(:until AS timestamptz[])) AS p(uuid, until)
WHERE s.uuid = p.uuid AND s.kind = 'webhook'
"""
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

# -- circuits -----------------------------------------------------------------------------------

MOVE_CIRCUITS = text(
    """
UPDATE subscribers s
SET circuit_state = c.state, circuit_since = c.since, circuit_next_probe_at = c.next_probe_at,
    circuit_failures = c.failures, circuit_probes = c.probes
FROM unnest(
    CAST(:uuids AS uuid[]), CAST(:states AS text[]), CAST(:since AS timestamptz[]),
    CAST(:next_probe_at AS timestamptz[]), CAST(:failures AS integer[]), CAST(:probes AS integer[])
) AS c(uuid, state, since, next_probe_at, failures, probes)
WHERE s.uuid = c.uuid
"""
)

# A webhook being enabled starts with a closed circuit (and a clean count).
CLOSE_CIRCUIT = text(
    """
UPDATE subscribers s
SET circuit_state = 'closed', circuit_failures = 0, circuit_probes = 0, circuit_next_probe_at = NULL,
    circuit_since = CASE WHEN s.circuit_state = 'closed' THEN s.circuit_since ELSE now() END
FROM (SELECT circuit_state FROM subscribers WHERE uuid = :uuid) AS before
WHERE s.uuid = :uuid
RETURNING before.circuit_state <> 'closed' AS was_open
"""
)

# A closed circuit's parked rows go back to the walk at once (a rate limit parks them again), its
# rate lane entry with them; the dispatchers are woken on commit.
UNPARK_CIRCUITS = (
    text(
        "UPDATE deliveries SET throttled = false "
        "WHERE subscriber_uuid = ANY(CAST(:uuids AS uuid[])) AND status = 'pending' AND throttled"
    ),
    text("UPDATE subscriber_rates SET opens_at = NULL WHERE subscriber_uuid = ANY(CAST(:uuids AS uuid[]))"),
    text(f"SELECT pg_notify('{DELIVERIES_CHANNEL}', '')"),
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
WITH RECURSIVE {_pending_subscribers_cte("d.status = 'pending'")},
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
