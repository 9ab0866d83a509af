"""Owned webhooks (a project as tenant), portal links, and the sign-in throttle of the console.

- ``subscribers.project_uuid``: the project that owns a webhook (NULL: not owned). Set at
  creation and never changed; a partial index serves the listing by owner.
- ``portal_links``: one-time links to a project's portal. Only the SHA-256 of a link's token is
  kept; ``used_at`` marks the one visit that exchanged it for a session, ``revoked_at`` a revoke.
- ``console_sessions.portal_link_uuid``: the link a portal session was started from, so that
  revoking the link ends its sessions (and deleting the link row removes them).
- ``console_sign_ins``: failed sign-ins per client address and minute, read by the throttle of
  ``/ui/login`` (in the database, so it holds across replicas).
- ``ix_delivery_attempts_status_code``: the delivery log's HTTP-status filter. Without it the
  filter probes each delivery's attempts newest first (a code found on 7 % of 100,000
  deliveries: 13.7 ms) or reads every attempt (a rare code: 7.1 ms); with it, 1.4 ms and 0.3 ms
  (EXPLAIN ANALYZE on the database bench.console fills).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("project_uuid", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_subscribers_project_uuid",
        "subscribers",
        ["project_uuid", "created_at", "uuid"],
        postgresql_where=sa.text("project_uuid IS NOT NULL"),
    )
    op.create_table(
        "portal_links",
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("project_uuid", sa.Uuid(), nullable=False),
        sa.Column("read_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name="pk_portal_links"),
        sa.UniqueConstraint("token_hash", name="uq_portal_links_token_hash"),
    )
    op.create_index("ix_portal_links_created_at", "portal_links", ["created_at"])
    op.create_index("ix_portal_links_project_uuid", "portal_links", ["project_uuid", "created_at"])
    op.add_column(
        "console_sessions",
        sa.Column(
            "portal_link_uuid",
            sa.Uuid(),
            sa.ForeignKey("portal_links.uuid", ondelete="CASCADE", name="fk_console_sessions_portal_link"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_console_sessions_portal_link_uuid",
        "console_sessions",
        ["portal_link_uuid"],
        postgresql_where=sa.text("portal_link_uuid IS NOT NULL"),
    )
    op.create_table(
        "console_sign_ins",
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("client", "minute", name="pk_console_sign_ins"),
    )
    op.create_index("ix_console_sign_ins_minute", "console_sign_ins", ["minute"])
    op.create_index("ix_delivery_attempts_status_code", "delivery_attempts", ["status_code", "delivery_uuid"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_status_code", table_name="delivery_attempts")
    op.drop_index("ix_console_sign_ins_minute", table_name="console_sign_ins")
    op.drop_table("console_sign_ins")
    op.drop_index("ix_console_sessions_portal_link_uuid", table_name="console_sessions")
    op.drop_column("console_sessions", "portal_link_uuid")
    op.drop_index("ix_portal_links_project_uuid", table_name="portal_links")
    op.drop_index("ix_portal_links_created_at", table_name="portal_links")
    op.drop_table("portal_links")
    op.drop_index("ix_subscribers_project_uuid", table_name="subscribers")
    op.drop_column("subscribers", "project_uuid")
