"""Index project-scoped wildcard subscriptions for matching at ingest.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Matching looks wildcard subscriptions up by the event's project; the index on
    # subscriber_uuid served no query.
    op.drop_index("ix_subscriptions_wildcard", table_name="subscriptions")
    op.create_index(
        "ix_subscriptions_wildcard_project",
        "subscriptions",
        ["project_uuid"],
        postgresql_where=sa.text("has_wildcard"),
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_wildcard_project", table_name="subscriptions")
    op.create_index(
        "ix_subscriptions_wildcard",
        "subscriptions",
        ["subscriber_uuid"],
        postgresql_where=sa.text("has_wildcard"),
    )
