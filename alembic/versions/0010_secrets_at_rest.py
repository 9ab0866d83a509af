"""Secrets at rest: the installation's secrets canary; webhook secrets become encrypted tokens.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Alembic runs without the application's keys, so this migration encrypts nothing itself: the
``secret`` and ``previous_secret`` columns stay ``text`` and from now on hold SecretBox tokens.
The application, at start (``service.core.secrets_at_rest.open_secrets``), checks its keys
against the canary (or writes it, under an advisory lock) and encrypts every plaintext secret
it finds, in batches of rows locked with ``FOR UPDATE SKIP LOCKED``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE installation ADD COLUMN secrets_canary text")


def downgrade() -> None:
    # The tokens stay in subscribers: they cannot be decrypted here (no keys), and a build
    # from before 0010 cannot read them.
    op.execute("ALTER TABLE installation DROP COLUMN secrets_canary")
