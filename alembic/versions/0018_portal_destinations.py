"""Which destination policy a webhook is held to: ``subscribers.url_from_portal``.

``HERALD_ALLOW_PRIVATE_DESTINATIONS`` governs the webhooks whose URL an admin set (an admin key,
the console); a webhook whose URL was set in a project's portal is held to
``HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS`` instead, at every delivery, so a tenant cannot aim
Herald at its own network. The dispatcher reads this column with each claim.

- ``subscribers.url_from_portal``: true when the URL was last set in the portal (created or
  edited there); setting the URL with an admin key or in the console makes it false.

Existing webhooks owned by a project are marked as portal ones: which of them were made in the
portal was not recorded, and holding an admin's to public destinations (until an admin sets its
URL again) is the safe mistake. Nothing changes while both settings have the same value.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: no table rewrite; the update touches the owned webhooks only.
    op.add_column(
        "subscribers",
        sa.Column("url_from_portal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE subscribers SET url_from_portal = true WHERE project_uuid IS NOT NULL")


def downgrade() -> None:
    op.drop_column("subscribers", "url_from_portal")
