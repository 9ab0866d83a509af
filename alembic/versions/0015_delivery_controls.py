"""Delivery controls: rate limits, ordered webhooks, pauses, the per-subscriber bound across replicas.

- ``subscribers.rate_limit_per_minute`` (NULL: no limit), ``subscribers.ordered`` and
  ``subscribers.paused_until`` (set by a 429/503 with ``Retry-After``).
- ``subscriber_rates``: each rate-limited webhook's next free slot (GCRA's theoretical arrival
  time), advanced by the claim. A table of its own, not a subscribers column: the claim writes
  it, and writing the subscriber row would wait on the outcome writer's and the disable's locks.
- ``dispatcher_inflight``: each dispatcher's in-flight count per subscriber, published by its
  claims; a claim subtracts the other live dispatchers' counts from the per-subscriber bound.
- ``ix_deliveries_pending_seq``: a subscriber's oldest pending delivery by recording order, in
  one index descent (ordered webhooks). Pending rows only: a claim (pending → delivering) adds
  no entry to it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
    op.add_column(
        "subscribers", sa.Column("ordered", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column("subscribers", sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        "ck_subscribers_rate_limit_per_minute",
        "subscribers",
        "rate_limit_per_minute BETWEEN 1 AND 60000",
    )
    # The chat formats' defaults, for the webhooks that exist already.
    op.execute(
        "UPDATE subscribers SET rate_limit_per_minute = CASE format WHEN 'discord' THEN 30 ELSE 60 END "
        "WHERE kind = 'webhook' AND format IN ('slack', 'teams', 'discord')"
    )
    op.create_table(
        "subscriber_rates",
        sa.Column("subscriber_uuid", sa.Uuid(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_uuid", name="pk_subscriber_rates"),
    )
    op.create_table(
        "dispatcher_inflight",
        sa.Column("dispatcher_uuid", sa.Uuid(), nullable=False),
        sa.Column("subscriber_uuids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dispatcher_uuid", name="pk_dispatcher_inflight"),
    )
    op.create_index(
        "ix_deliveries_pending_seq",
        "deliveries",
        ["subscriber_uuid", "seq"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending_seq", table_name="deliveries")
    op.drop_table("dispatcher_inflight")
    op.drop_table("subscriber_rates")
    op.drop_constraint("ck_subscribers_rate_limit_per_minute", "subscribers", type_="check")
    op.drop_column("subscribers", "paused_until")
    op.drop_column("subscribers", "ordered")
    op.drop_column("subscribers", "rate_limit_per_minute")
