"""Foundation: the event catalog, the events table and the installation row.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The catalog as of this revision (the platform's 58 types). Later revisions add rows of
# their own; this list never changes once released.
EVENT_TYPES: list[tuple[str, str]] = [
    ("project:created", "A project was created."),
    ("project:updated", "A project was updated."),
    ("project:deleted", "A project was deleted."),
    ("project:pipeline:created", "A pipeline of a project was created."),
    ("project:pipeline:updated", "A pipeline of a project was updated."),
    ("project:pipeline:deleted", "A pipeline of a project was deleted."),
    ("project:pipeline:interactive-session:started", "An interactive session of a pipeline started."),
    ("project:pipeline:interactive-session:stopped", "An interactive session of a pipeline stopped."),
    (
        "project:pipeline:interactive-session:service-restarted",
        "An interactive session of a pipeline had one of its services restarted.",
    ),
    ("project:pipeline:interactive-session:failed", "An interactive session of a pipeline failed."),
    ("project:pipeline:interactive-session:succeeded", "An interactive session of a pipeline succeeded."),
    ("project:pipeline:interactive-session:pipeline-run:created", "An interactive pipeline run was created."),
    ("project:pipeline:interactive-session:pipeline-run:started", "An interactive pipeline run started."),
    (
        "project:pipeline:interactive-session:pipeline-run:cancelled",
        "An interactive pipeline run was cancelled.",
    ),
    ("project:pipeline:interactive-session:pipeline-run:failed", "An interactive pipeline run failed."),
    ("project:pipeline:interactive-session:pipeline-run:succeeded", "An interactive pipeline run succeeded."),
    ("project:environment:created", "An environment of a project was created."),
    ("project:environment:deleted", "An environment of a project was deleted."),
    ("project:environment:image-build:created", "An environment image build was created."),
    ("project:environment:image-build:started", "An environment image build started."),
    ("project:environment:image-build:cancelled", "An environment image build was cancelled."),
    ("project:environment:image-build:failed", "An environment image build failed."),
    ("project:environment:image-build:succeeded", "An environment image build succeeded."),
    ("project:one-off-job:created", "A one-off job was created."),
    ("project:one-off-job:started", "A one-off job started."),
    ("project:one-off-job:deleted", "A one-off job was deleted."),
    ("project:one-off-job:cancelled", "A one-off job was cancelled."),
    ("project:one-off-job:failed", "A one-off job failed."),
    ("project:one-off-job:succeeded", "A one-off job succeeded."),
    ("project:one-off-job:updated", "A one-off job was updated."),
    ("project:one-off-job:pipeline-run:created", "A pipeline run of a one-off job was created."),
    ("project:one-off-job:pipeline-run:started", "A pipeline run of a one-off job started."),
    ("project:one-off-job:pipeline-run:cancelled", "A pipeline run of a one-off job was cancelled."),
    ("project:one-off-job:pipeline-run:failed", "A pipeline run of a one-off job failed."),
    ("project:one-off-job:pipeline-run:deleted", "A pipeline run of a one-off job was deleted."),
    ("project:one-off-job:pipeline-run:succeeded", "A pipeline run of a one-off job succeeded."),
    ("project:cron-job:created", "A cron job was created."),
    ("project:cron-job:started", "A cron job started."),
    ("project:cron-job:deleted", "A cron job was deleted."),
    ("project:cron-job:cancelled", "A cron job was cancelled."),
    ("project:cron-job:failed", "A cron job failed."),
    ("project:cron-job:paused", "A cron job was paused."),
    ("project:cron-job:unpaused", "A cron job was unpaused."),
    ("project:cron-job:updated", "A cron job was updated."),
    ("project:cron-job:run:started", "A run of a cron job started."),
    ("project:cron-job:run:succeeded", "A run of a cron job succeeded."),
    ("project:cron-job:run:failed", "A run of a cron job failed."),
    ("project:cron-job:run:pipeline-run:created", "A pipeline run of a cron job run was created."),
    ("project:cron-job:run:pipeline-run:started", "A pipeline run of a cron job run started."),
    ("project:cron-job:run:pipeline-run:cancelled", "A pipeline run of a cron job run was cancelled."),
    ("project:cron-job:run:pipeline-run:failed", "A pipeline run of a cron job run failed."),
    ("project:cron-job:run:pipeline-run:deleted", "A pipeline run of a cron job run was deleted."),
    ("project:cron-job:run:pipeline-run:succeeded", "A pipeline run of a cron job run succeeded."),
    ("jupyter:image-build:created", "A Jupyter image build was created."),
    ("jupyter:image-build:started", "A Jupyter image build started."),
    ("jupyter:image-build:cancelled", "A Jupyter image build was cancelled."),
    ("jupyter:image-build:failed", "A Jupyter image build failed."),
    ("jupyter:image-build:succeeded", "A Jupyter image build succeeded."),
]

PING = ("ping", "A test delivery sent on request; not a catalog type, never subscribable.")


def upgrade() -> None:
    event_types = op.create_table(
        "event_types",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_event_types"),
    )
    op.bulk_insert(event_types, [{"name": n, "description": d} for n, d in [*EVENT_TYPES, PING]])

    op.create_table(
        "events",
        sa.Column("uuid", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("project_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("pipeline_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("environment_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("job_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("pipeline_run_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("image_build_uuid", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("run_number", sa.Integer(), nullable=True),
        # The validated entity sections as ingested (idempotency compares them).
        sa.Column("sections", postgresql.JSONB(), nullable=False),
        # The notification payload exactly as rendered at ingest (json keeps its bytes); the feed
        # and every webhook delivery show these same bytes.
        sa.Column("payload", postgresql.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_events"),
        sa.ForeignKeyConstraint(["type"], ["event_types.name"], name="fk_events_type_event_types"),
        sa.UniqueConstraint("seq", name="uq_events_seq"),
    )
    op.create_index("ix_events_project_uuid_seq", "events", ["project_uuid", "seq"])
    op.create_index("ix_events_job_uuid_seq", "events", ["job_uuid", "seq"])
    op.create_index("ix_events_type_seq", "events", ["type", "seq"])
    op.create_index("ix_events_timestamp", "events", ["timestamp"])

    # One row: the installation's random id (telemetry distinct_id) and the key of the
    # keyed hash that pseudonymizes entity uuids in telemetry.
    op.create_table(
        "installation",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("installation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("anonymization_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_installation"),
        sa.CheckConstraint("id = 1", name="ck_installation_single_row"),
    )
    # gen_random_uuid() draws from pg_strong_random(): two of them give 244 random key bits.
    op.execute(
        "INSERT INTO installation (id, installation_id, anonymization_key) VALUES (1, gen_random_uuid(), "
        "decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))"
    )


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_index("ix_events_timestamp", table_name="events")
    op.drop_index("ix_events_type_seq", table_name="events")
    op.drop_index("ix_events_job_uuid_seq", table_name="events")
    op.drop_index("ix_events_project_uuid_seq", table_name="events")
    op.drop_table("events")
    op.drop_table("event_types")
