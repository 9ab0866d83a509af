"""Keep no statistics on deliveries.status: a queue's statistics are stale by nature.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Analyzed while the queue was empty, the statistics say no row is pending; the planner then
    # read a subscriber's due rows for a claim through ix_deliveries_status_seq (every pending row,
    # filtered and sorted: 4-9 ms per claim) instead of ix_deliveries_subscriber_due (bench/,
    # healthy endpoint beside a hanging one). Without statistics the planner assumes a fixed
    # small share of rows per status, whatever the queue held at the last ANALYZE.
    op.execute("ALTER TABLE deliveries ALTER COLUMN status SET STATISTICS 0")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries ALTER COLUMN status SET STATISTICS -1")
