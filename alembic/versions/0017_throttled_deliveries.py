"""Rate-limited webhooks' waiting deliveries leave the claim's walk: ``deliveries.throttled``.

A claim walks every subscriber with due rows (a skip scan over ``ix_deliveries_subscriber_due``).
A rate-limited webhook whose slot is closed used to cost that walk an index descent and a join on
every claim while it waited; with a thousand such webhooks that was most of a claim. Now the claim
that finds one parks its due rows (``throttled = true``) and stamps the webhook's
``subscriber_rates.opens_at``; later claims serve it from ``ix_subscriber_rates_opens_at`` when its
slot opens, reading its rows through ``ix_deliveries_throttled``.

- ``deliveries.throttled``: set on a pending row while its rate-limited webhook waits for a slot;
  every way back to ``pending`` clears it.
- ``ix_deliveries_subscriber_due`` is rebuilt for ``status = 'pending' AND NOT throttled``.
- ``ix_deliveries_throttled``: the parked rows, per subscriber, oldest first.
- ``subscriber_rates.opens_at``: when a webhook with parked rows may take its next request.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = "status = 'pending' AND NOT throttled"


def upgrade() -> None:
    # A constant default: no table rewrite.
    op.add_column(
        "deliveries", sa.Column("throttled", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.drop_index("ix_deliveries_subscriber_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_subscriber_due",
        "deliveries",
        ["subscriber_uuid", "next_attempt_at"],
        postgresql_where=sa.text(_WAITING),
    )
    op.create_index(
        "ix_deliveries_throttled",
        "deliveries",
        ["subscriber_uuid", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending' AND throttled"),
    )
    op.add_column("subscriber_rates", sa.Column("opens_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_subscriber_rates_opens_at",
        "subscriber_rates",
        ["opens_at"],
        postgresql_where=sa.text("opens_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_subscriber_rates_opens_at", table_name="subscriber_rates")
    op.drop_column("subscriber_rates", "opens_at")
    op.drop_index("ix_deliveries_throttled", table_name="deliveries")
    op.drop_index("ix_deliveries_subscriber_due", table_name="deliveries")
    op.drop_column("deliveries", "throttled")
    op.create_index(
        "ix_deliveries_subscriber_due",
        "deliveries",
        ["subscriber_uuid", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
