"""Subscribers, subscriptions and the transactional outbox (deliveries and their attempts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
NOW = sa.text("now()")

# Derived in the database so that matching can use LIKE without any code keeping a copy in sync:
# '*' matches any run of characters, every other character is literal.
LIKE_PATTERN_SQL = (
    "replace(replace(replace(replace(event_type, '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%')"
)


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("uuid", UUID, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verify_ssl", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("content_type", sa.Text(), server_default="application/json", nullable=False),
        sa.Column("format", sa.Text(), server_default="standard", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_subscribers"),
        sa.CheckConstraint("kind IN ('webhook', 'analytics')", name="ck_subscribers_kind"),
        sa.CheckConstraint(
            "format IN ('standard', 'slack', 'teams', 'discord')", name="ck_subscribers_format"
        ),
        sa.CheckConstraint(
            "content_type IN ('application/json', 'application/x-www-form-urlencoded')",
            name="ck_subscribers_content_type",
        ),
        sa.CheckConstraint(
            "kind <> 'webhook' OR (url IS NOT NULL AND secret IS NOT NULL)",
            name="ck_subscribers_webhook_fields",
        ),
    )
    op.create_index("ix_subscribers_created_at", "subscribers", ["created_at"])
    # At most one analytics subscriber, created right here (so it exists from the first start).
    op.create_index(
        "uq_subscribers_analytics",
        "subscribers",
        ["kind"],
        unique=True,
        postgresql_where=sa.text("kind = 'analytics'"),
    )

    op.create_table(
        "subscriptions",
        sa.Column("uuid", UUID, nullable=False),
        sa.Column("subscriber_uuid", UUID, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("like_pattern", sa.Text(), sa.Computed(LIKE_PATTERN_SQL, persisted=True), nullable=False),
        sa.Column(
            "has_wildcard",
            sa.Boolean(),
            sa.Computed("strpos(event_type, '*') > 0", persisted=True),
            nullable=False,
        ),
        sa.Column("project_uuid", UUID, nullable=True),
        sa.Column("job_uuid", UUID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(
            ["subscriber_uuid"],
            ["subscribers.uuid"],
            ondelete="CASCADE",
            name="fk_subscriptions_subscriber_uuid_subscribers",
        ),
        sa.CheckConstraint(
            "(kind = 'global' AND project_uuid IS NULL AND job_uuid IS NULL)"
            " OR (kind = 'project' AND project_uuid IS NOT NULL AND job_uuid IS NULL)"
            " OR (kind = 'job' AND project_uuid IS NOT NULL AND job_uuid IS NOT NULL)",
            name="ck_subscriptions_scope",
        ),
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_subscriptions_subscriber_pattern_scope ON subscriptions "
        "(subscriber_uuid, event_type, project_uuid, job_uuid) NULLS NOT DISTINCT"
    )
    op.create_index(
        "ix_subscriptions_exact_event_type",
        "subscriptions",
        ["event_type"],
        postgresql_where=sa.text("NOT has_wildcard"),
    )
    op.create_index(
        "ix_subscriptions_wildcard",
        "subscriptions",
        ["subscriber_uuid"],
        postgresql_where=sa.text("has_wildcard"),
    )

    op.create_table(
        "deliveries",
        sa.Column("uuid", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        # No foreign keys: relayed telemetry has no events row, and a delivery outlives a deleted
        # subscriber (it stays listable by subscriber_uuid).
        sa.Column("event_uuid", UUID, nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("subscriber_uuid", UUID, nullable=False),
        sa.Column("subscriber_kind", sa.Text(), nullable=False),
        # json, not jsonb: the payload's bytes (key order included) are kept exactly as rendered.
        sa.Column("payload", postgresql.JSON(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=NOW, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", UUID, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_deliveries"),
        sa.UniqueConstraint("seq", name="uq_deliveries_seq"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivering', 'delivered', 'failed', 'cancelled')",
            name="ck_deliveries_status",
        ),
    )
    # "What is due" reads only pending rows: its cost follows the due rows, not the table.
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_subscriber_due",
        "deliveries",
        ["subscriber_uuid", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_lease",
        "deliveries",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'delivering'"),
    )
    op.create_index("ix_deliveries_event_uuid", "deliveries", ["event_uuid"])
    op.create_index("ix_deliveries_subscriber_uuid_seq", "deliveries", ["subscriber_uuid", "seq"])
    op.create_index("ix_deliveries_status_seq", "deliveries", ["status", "seq"])
    op.create_index("ix_deliveries_created_at", "deliveries", ["created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("delivery_uuid", UUID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_uuid"],
            ["deliveries.uuid"],
            ondelete="CASCADE",
            name="fk_delivery_attempts_delivery_uuid_deliveries",
        ),
    )
    op.create_index(
        "ix_delivery_attempts_delivery_uuid_number", "delivery_attempts", ["delivery_uuid", "number"]
    )

    op.execute(
        "INSERT INTO subscribers (uuid, kind, name, enabled) VALUES (gen_random_uuid(), 'analytics', 'analytics', true)"
    )
    op.execute(
        "INSERT INTO subscriptions (uuid, subscriber_uuid, kind, event_type) "
        "SELECT gen_random_uuid(), uuid, 'global', '*' FROM subscribers WHERE kind = 'analytics'"
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
