"""Telemetry: one heartbeat per interval per installation, however many replicas run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # At most one row (id = 1), written by whichever replica's heartbeat wins an interval; it
    # is created by the first heartbeat (upsert), so an emptied table is no problem.
    op.create_table(
        "telemetry_heartbeats",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        # Start of the last interval a heartbeat was sent for (strictly increasing).
        sa.Column("last_slot_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        # Latest API activity any replica reported (each replica only knows its own).
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_heartbeats"),
        sa.CheckConstraint("id = 1", name="ck_telemetry_heartbeats_single_row"),
    )


def downgrade() -> None:
    op.drop_table("telemetry_heartbeats")
