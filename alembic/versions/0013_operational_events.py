"""Operational events: the five ``herald:*`` types, the failing reports and the counts.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02

Additive only. The event types are written out here (not imported from the application) so
that this migration keeps meaning what it meant when it was written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATIONAL_TYPES = (
    (
        "herald:subscriber:disabled",
        "A webhook was disabled: it answered 410, kept failing for too long, or was disabled by hand.",
    ),
    ("herald:subscriber:enabled", "A disabled webhook was enabled again."),
    (
        "herald:delivery:failing",
        "A delivery failed HERALD_FAILING_AFTER_ATTEMPTS attempts and is still being retried.",
    ),
    ("herald:delivery:failed", "A delivery ended failed (out of attempts, or 410)."),
    ("herald:delivery:recovered", "A delivery that had been reported failing was delivered."),
)


def upgrade() -> None:
    event_types = sa.table("event_types", sa.column("name", sa.Text()), sa.column("description", sa.Text()))
    op.bulk_insert(event_types, [{"name": n, "description": d} for n, d in OPERATIONAL_TYPES])
    op.create_table(
        "operational_reports",
        sa.Column("delivery_uuid", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("failing_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("delivery_uuid", name="pk_operational_reports"),
        sa.ForeignKeyConstraint(
            ["delivery_uuid"],
            ["deliveries.uuid"],
            ondelete="CASCADE",
            name="fk_operational_reports_delivery_uuid_deliveries",
        ),
    )
    op.create_table(
        "operational_counts",
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("recorded", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", name="pk_operational_counts"),
        sa.ForeignKeyConstraint(
            ["type"], ["event_types.name"], name="fk_operational_counts_type_event_types"
        ),
    )


def downgrade() -> None:
    op.drop_table("operational_counts")
    op.drop_table("operational_reports")
    op.execute("DELETE FROM deliveries WHERE event_type LIKE 'herald:%'")
    op.execute("DELETE FROM events WHERE type LIKE 'herald:%'")
    op.execute("DELETE FROM event_types WHERE name LIKE 'herald:%'")
