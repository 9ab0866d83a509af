"""Deliveries' uuids default to gen_random_uuid(), so a COPY may leave them to the server.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch ingest spent ~6 % of its CPU making three uuid4() per event in Python (bench.profile
    # batch); RECORD_SQL already uses gen_random_uuid().
    op.execute("ALTER TABLE deliveries ALTER COLUMN uuid SET DEFAULT gen_random_uuid()")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries ALTER COLUMN uuid DROP DEFAULT")
