"""Custom event types: a schema, a version and a deletion mark on ``event_types``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

Additive only: the built-in rows get ``custom = false``, no schema, version 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "event_types", sa.Column("custom", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column("event_types", sa.Column("schema", postgresql.JSONB(), nullable=True))
    op.add_column(
        "event_types", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    for column in ("created_at", "updated_at"):
        op.add_column(
            "event_types",
            sa.Column(column, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        )
    op.add_column("event_types", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # The custom types go, and so do their events and deliveries (as 0013 does for its types).
    custom = "(SELECT name FROM event_types WHERE custom)"
    op.execute(f"DELETE FROM deliveries WHERE event_type IN {custom}")  # noqa: S608
    op.execute(f"DELETE FROM events WHERE type IN {custom}")  # noqa: S608
    op.execute("DELETE FROM event_types WHERE custom")
    for column in ("deleted_at", "updated_at", "created_at", "version", "schema", "custom"):
        op.drop_column("event_types", column)
