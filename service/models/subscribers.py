"""Subscribers: one table, one class per kind (``webhook``, ``analytics``).

The single table holds every column; the webhook-only ones (url, secrets, format...) are
NULL or at their defaults for the analytics subscriber, which the migrations create (there
is exactly one, enforced by a partial unique index).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ARRAY, Boolean, CheckConstraint, Column, DateTime, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from service.models.base import SingleTableInheritanceMeta


def secret_context(subscriber_uuid: UUID, column: str) -> str:
    """The associated data of a secret column's token: it opens in this row and column only."""
    return f"subscribers.{column}:{subscriber_uuid}"


class SubscriberKind(StrEnum):
    WEBHOOK = "webhook"
    ANALYTICS = "analytics"


def _timestamp(*, nullable: bool = True, index: bool = False, server_now: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True),
            nullable=nullable,
            index=index,
            server_default=text("now()") if server_now else None,
        ),
    )


class Subscriber(SQLModel, table=True, metaclass=SingleTableInheritanceMeta):
    """Someone who hears about events; ``kind`` is the single-table-inheritance discriminator."""

    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint("kind IN ('webhook', 'analytics')", name="kind"),
        CheckConstraint("format IN ('standard', 'slack', 'teams', 'discord')", name="format"),
        CheckConstraint(
            "content_type IN ('application/json', 'application/x-www-form-urlencoded')", name="content_type"
        ),
        CheckConstraint(
            "kind <> 'webhook' OR (url IS NOT NULL AND secret IS NOT NULL)", name="webhook_fields"
        ),
        CheckConstraint("rate_limit_per_minute BETWEEN 1 AND 60000", name="rate_limit_per_minute"),
        CheckConstraint("circuit_state IN ('closed', 'open', 'half-open')", name="circuit_state"),
        # At most one analytics subscriber.
        Index("uq_subscribers_analytics", "kind", unique=True, postgresql_where=text("kind = 'analytics'")),
        # The webhooks of one project, newest first (GET /api/v1/subscribers?project_uuid=).
        Index(
            "ix_subscribers_project_uuid",
            "project_uuid",
            "created_at",
            "uuid",
            postgresql_where=text("project_uuid IS NOT NULL"),
        ),
        # The circuits a claim may probe (docs/delivery.md, "The circuit"): one index read per claim.
        Index(
            "ix_subscribers_circuit_probe",
            "circuit_next_probe_at",
            postgresql_where=text("circuit_state <> 'closed'"),
        ),
    )
    # eager_defaults: timestamps set by the database come back with RETURNING, so an async
    # session never needs a lazy load to read them.
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind", "eager_defaults": True}

    uuid: UUID = Field(primary_key=True)
    kind: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    url: str | None = Field(default=None, sa_type=Text)
    # Both secrets hold SecretBox tokens (service.common.secretbox), never the secret itself.
    secret: str | None = Field(default=None, sa_type=Text, repr=False)
    previous_secret: str | None = Field(default=None, sa_type=Text, repr=False)
    previous_secret_expires_at: datetime | None = _timestamp()
    # The custom request headers: one SecretBox token of the JSON object name → value (NULL when
    # there are none), and their names in plain text, sorted, for display.
    headers: str | None = Field(default=None, sa_type=Text, repr=False)
    header_names: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    )
    verify_ssl: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, server_default=text("true"))
    )
    content_type: str = Field(
        default="application/json",
        sa_column=Column(Text, nullable=False, server_default="application/json"),
    )
    format: str = Field(default="standard", sa_column=Column(Text, nullable=False, server_default="standard"))
    enabled: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, server_default=text("true"))
    )
    disabled_reason: str | None = Field(default=None, sa_type=Text)
    # The failure clock: the first failure since the last success (auto-disable reads it).
    last_success_at: datetime | None = _timestamp()
    failing_since: datetime | None = _timestamp()
    # The project that owns the webhook (its tenant): set at creation, never changed. An owned
    # webhook's subscriptions are all scoped to it, so it only ever hears of that project.
    project_uuid: UUID | None = None
    # The URL was last set in the project's portal: the portal's destination policy
    # (HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS) holds its deliveries and tests, not the admins'.
    url_from_portal: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    # Delivery controls (docs/delivery.md, "Delivery controls"): NULL rate = no limit; an ordered
    # webhook has at most its oldest unfinished delivery in flight; nothing is sent before
    # paused_until (a 429/503 with Retry-After).
    rate_limit_per_minute: int | None = Field(default=None, sa_type=Integer)
    ordered: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    paused_until: datetime | None = _timestamp()
    # The circuit breaker (migration 0019): consecutive failed attempts open it; while open, no
    # delivery is attempted until circuit_next_probe_at, when one is (half-open). circuit_probes
    # counts the failed probes since it opened (the wait before the next one doubles with each);
    # circuit_since is when it opened (kept across probes) or, once closed again, when it closed.
    circuit_state: str = Field(
        default="closed", sa_column=Column(Text, nullable=False, server_default="closed")
    )
    circuit_since: datetime | None = _timestamp()
    circuit_next_probe_at: datetime | None = _timestamp()
    circuit_failures: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    circuit_probes: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    created_at: datetime | None = _timestamp(nullable=False, index=True, server_now=True)
    updated_at: datetime | None = _timestamp(nullable=False, server_now=True)


class WebhookSubscriber(Subscriber):
    """A user's HTTP endpoint: signed POSTs in the standard envelope or a chat format."""

    __mapper_args__ = {"polymorphic_identity": SubscriberKind.WEBHOOK.value}


class AnalyticsSubscriber(Subscriber):
    """The telemetry backend: subscribed to everything, fed only while telemetry is on."""

    __mapper_args__ = {"polymorphic_identity": SubscriberKind.ANALYTICS.value}
