"""Webhook headers: the custom request headers of a webhook, encrypted at rest.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Additive only: ``headers`` holds one SecretBox token of the JSON object name → value (NULL when
the webhook has none), ``header_names`` the names in plain text, sorted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("headers", sa.Text(), nullable=True))
    op.add_column(
        "subscribers",
        sa.Column(
            "header_names",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
    )


def downgrade() -> None:
    op.drop_column("subscribers", "header_names")
    op.drop_column("subscribers", "headers")
