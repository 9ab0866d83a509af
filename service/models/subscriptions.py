"""Subscriptions: one table, one class per scope (``global``, ``project``, ``job``).

``event_type`` is a catalog name or a pattern where ``*`` matches any run of characters,
stored as written. The database derives ``like_pattern`` (the pattern as a ``LIKE``
pattern) and ``has_wildcard`` from it, so that matching an event is one indexed join: exact
names through ``ix_subscriptions_exact_event_type``, wildcards through ``LIKE``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, Column, Computed, DateTime, ForeignKey, Index, Text, text
from sqlmodel import Field, SQLModel

from service.models.base import SingleTableInheritanceMeta

# Must stay identical to the migration's expression (alembic/versions/0002_outbox.py).
LIKE_PATTERN_SQL = (
    "replace(replace(replace(replace(event_type, '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%')"
)


class SubscriptionKind(StrEnum):
    GLOBAL = "global"
    PROJECT = "project"
    JOB = "job"


class Subscription(SQLModel, table=True, metaclass=SingleTableInheritanceMeta):
    """One event-type pattern a subscriber hears about, optionally scoped to a project or a job."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'global' AND project_uuid IS NULL AND job_uuid IS NULL)"
            " OR (kind = 'project' AND project_uuid IS NOT NULL AND job_uuid IS NULL)"
            " OR (kind = 'job' AND project_uuid IS NOT NULL AND job_uuid IS NOT NULL)",
            name="scope",
        ),
        # NULLS NOT DISTINCT: two global subscriptions to one pattern are duplicates too.
        Index(
            "uq_subscriptions_subscriber_pattern_scope",
            "subscriber_uuid",
            "event_type",
            "project_uuid",
            "job_uuid",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_subscriptions_exact_event_type", "event_type", postgresql_where=text("NOT has_wildcard")),
        Index("ix_subscriptions_wildcard_project", "project_uuid", postgresql_where=text("has_wildcard")),
    )
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind", "eager_defaults": True}

    uuid: UUID = Field(primary_key=True)
    subscriber_uuid: UUID = Field(
        sa_column=Column(ForeignKey("subscribers.uuid", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_type=Text)
    event_type: str = Field(sa_type=Text)
    like_pattern: str | None = Field(
        default=None, sa_column=Column(Text, Computed(LIKE_PATTERN_SQL, persisted=True), nullable=False)
    )
    has_wildcard: bool | None = Field(
        default=None,
        sa_column=Column(Boolean, Computed("strpos(event_type, '*') > 0", persisted=True), nullable=False),
    )
    project_uuid: UUID | None = None
    job_uuid: UUID | None = None
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )

    @staticmethod
    def scoped(
        subscriber_uuid: UUID, uuid: UUID, event_type: str, project_uuid: UUID | None, job_uuid: UUID | None
    ) -> Subscription:
        """The subscription of the class its scope calls for (``job_uuid`` implies a project)."""
        if job_uuid is not None and project_uuid is not None:
            return JobSubscription(
                uuid=uuid,
                subscriber_uuid=subscriber_uuid,
                event_type=event_type,
                project_uuid=project_uuid,
                job_uuid=job_uuid,
            )
        if project_uuid is not None:
            return ProjectSubscription(
                uuid=uuid, subscriber_uuid=subscriber_uuid, event_type=event_type, project_uuid=project_uuid
            )
        return GlobalSubscription(uuid=uuid, subscriber_uuid=subscriber_uuid, event_type=event_type)


class GlobalSubscription(Subscription):
    """Every event whose type matches."""

    __mapper_args__ = {"polymorphic_identity": SubscriptionKind.GLOBAL.value}


class ProjectSubscription(Subscription):
    """Only events of one project."""

    __mapper_args__ = {"polymorphic_identity": SubscriptionKind.PROJECT.value}


class JobSubscription(Subscription):
    """Only events of one job (of one project): never another job of the same project."""

    __mapper_args__ = {"polymorphic_identity": SubscriptionKind.JOB.value}
