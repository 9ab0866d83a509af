"""Retention: find expired finished deliveries without scanning the outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only finished deliveries are in it, ordered by their last change: each retention batch
    # (service/core/retention.py) reads the oldest of them, however large the table.
    op.create_index(
        "ix_deliveries_retention",
        "deliveries",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('delivered', 'cancelled', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_retention", table_name="deliveries")
