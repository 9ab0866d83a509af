"""Subscriber requests and answers (docs/webhooks.md; the OpenAPI schema at /docs).

The secret appears in one answer only, ``SubscriberCreated`` (and ``SecretOut`` of
rotate-secret); every other model leaves it out by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from service.common.formats import ContentType, Format
from service.common.secrets import decode_secret
from service.models.subscribers import Subscriber
from service.models.subscriptions import Subscription
from service.schemas.inputs import NO_NUL
from service.schemas.subscriptions import EXAMPLE_JOB, EXAMPLE_PROJECT, SubscriptionItem, SubscriptionOut
from service.schemas.webhook_headers import Headers

SubscriberType = Literal["webhook", "analytics"]

OWNER_DESCRIPTION = (
    "The project that owns the webhook (it cannot change later). An owned webhook receives only "
    "that project's events: each subscription is scoped to the project (filled in when left out), "
    "and `*` means every event type that has a project."
)

NAME_MAX_CHARS = 100
URL_MAX_CHARS = 2048
SUBSCRIPTIONS_MAX = 1000
RATE_LIMIT_MIN_PER_MINUTE = 1
RATE_LIMIT_MAX_PER_MINUTE = 60_000

_EXAMPLE_UUID = "5b0f3a9e-8d0c-4c86-9a53-2f1c8e1d7a41"
_EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a documentation example


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("name must not be blank")
    return value


def _check_url(value: str) -> str:
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise ValueError("url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("url must name a host")
    return value


def _check_secret(value: str) -> str:
    # decode_secret's messages never quote the secret.
    decode_secret(value)
    return value


Name = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX_CHARS, description="A label for people (1 to 100 characters)."),
    AfterValidator(_check_name),
    NO_NUL,
]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX_CHARS,
        description="Where to POST: an http(s) URL, kept as written. Never logged beyond `scheme://host`.",
    ),
    AfterValidator(_check_url),
]
RateLimit = Annotated[
    StrictInt,
    Field(ge=RATE_LIMIT_MIN_PER_MINUTE, le=RATE_LIMIT_MAX_PER_MINUTE),
]
RATE_LIMIT_DESCRIPTION = (
    "Requests per minute at most, across every replica, as an even rate (a burst of at most "
    "3); null for no limit. Omitted at creation: 60 for `slack` and `teams`, 30 for `discord`, "
    "null otherwise."
)
SUBSCRIPTIONS_DESCRIPTION = (
    'Each an object, or only its `event_type` for an unscoped subscription (`["*"]` is '
    '`[{"event_type": "*"}]`). Duplicates are merged.'
)
ORDERED_DESCRIPTION = (
    "Only the oldest unfinished delivery (by the order its events were recorded) is ever in "
    "flight: a delivery waiting for its retry holds the later ones back."
)
Secret = Annotated[
    str,
    Field(
        description="`whsec_` followed by the standard base64 of 24 to 64 random bytes.",
        examples=[_EXAMPLE_SECRET],
    ),
    AfterValidator(_check_secret),
]


class WebhookCreate(BaseModel):
    """A new webhook subscriber."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "CI failures to Slack",
                    "url": "https://hooks.slack.com/services/T000/B000/XXXX",
                    "subscriptions": [{"event_type": "project:*:pipeline-run:failed"}],
                },
                {
                    "name": "Nightly job monitor",
                    "url": "https://ops.example.com/herald",
                    "secret": _EXAMPLE_SECRET,
                    "subscriptions": [
                        {
                            "event_type": "project:one-off-job:*",
                            "project_uuid": EXAMPLE_PROJECT,
                            "job_uuid": EXAMPLE_JOB,
                        }
                    ],
                },
            ]
        },
    )

    name: Name
    url: Url
    secret: Secret | None = Field(
        default=None, description="Generated when absent; shown only in the 201 answer."
    )
    verify_ssl: bool = True
    content_type: ContentType = "application/json"
    format: Format | None = Field(
        default=None,
        description=(
            "`standard`, or a chat format (JSON only). When omitted: `slack` for hooks.slack.com, "
            "`discord` for discord.com/api/webhooks/…, `teams` for *.webhook.office.com, else `standard`."
        ),
    )
    enabled: bool = True
    subscriptions: list[SubscriptionItem] = Field(
        default_factory=list, max_length=SUBSCRIPTIONS_MAX, description=SUBSCRIPTIONS_DESCRIPTION
    )
    project_uuid: UUID | None = Field(default=None, description=OWNER_DESCRIPTION)
    rate_limit_per_minute: RateLimit | None = Field(default=None, description=RATE_LIMIT_DESCRIPTION)
    ordered: bool = Field(default=False, description=ORDERED_DESCRIPTION)
    headers: Headers = Field(default_factory=dict)


_NULLABLE_IN_PATCH = frozenset({"project_uuid", "rate_limit_per_minute"})


class WebhookUpdate(BaseModel):
    """Fields to change; absent ones stay. ``subscriptions`` replaces the whole set."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": True},
                {"url": "https://ops.example.com/herald/v2", "subscriptions": [{"event_type": "*:failed"}]},
            ]
        },
    )

    name: Name | None = None
    url: Url | None = None
    secret: Secret | None = Field(
        default=None,
        description=(
            "A secret of your choosing; as with rotate-secret, the old one keeps signing "
            "during the grace period."
        ),
    )
    verify_ssl: bool | None = None
    content_type: ContentType | None = None
    format: Format | None = Field(default=None, description="Changes only when given.")
    enabled: bool | None = Field(
        default=None,
        description=(
            "`false` disables (pending deliveries fail with `subscriber disabled`); `true` re-enables and "
            "clears `disabled_reason` and the failure clock."
        ),
    )
    subscriptions: list[SubscriptionItem] | None = Field(
        default=None, max_length=SUBSCRIPTIONS_MAX, description=SUBSCRIPTIONS_DESCRIPTION
    )
    project_uuid: UUID | None = Field(
        default=None,
        description="Cannot change: only the webhook's own value (or null for one not owned) is accepted.",
    )
    rate_limit_per_minute: RateLimit | None = Field(
        default=None, description="Changes only when given; null removes the limit."
    )
    ordered: bool | None = None
    headers: Headers | None = Field(default=None, description="Replaces the whole set; `{}` clears it.")

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Defaults are not validated: only an explicit null gets here. A null project_uuid is the
        # value of a webhook no project owns, checked against the webhook itself; a null rate
        # limit means no limit.
        if value is None and info.field_name not in _NULLABLE_IN_PATCH:
            raise ValueError("may be left out but not null")
        return value


class SubscriberOut(BaseModel):
    """A subscriber (never its secret)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "uuid": _EXAMPLE_UUID,
                    "type": "webhook",
                    "name": "Nightly job monitor",
                    "url": "https://ops.example.com/herald",
                    "verify_ssl": True,
                    "content_type": "application/json",
                    "format": "standard",
                    "enabled": True,
                    "disabled_reason": None,
                    "subscriptions": [
                        {
                            "event_type": "project:one-off-job:*",
                            "project_uuid": EXAMPLE_PROJECT,
                            "job_uuid": EXAMPLE_JOB,
                        }
                    ],
                    "project_uuid": None,
                    "rate_limit_per_minute": None,
                    "ordered": False,
                    "paused_until": None,
                    "header_names": ["Authorization"],
                    "last_success_at": "2026-11-24T09:15:02.113Z",
                    "failing_since": None,
                    "circuit": {
                        "state": "closed",
                        "since": None,
                        "next_probe_at": None,
                        "consecutive_failures": 0,
                    },
                    "created_at": "2026-11-20T16:03:44.520Z",
                    "updated_at": "2026-11-20T16:03:44.520Z",
                }
            ]
        }
    )

    uuid: UUID
    type: SubscriberType
    name: str
    url: str | None = Field(description="null for the analytics subscriber.")
    verify_ssl: bool
    content_type: ContentType
    format: Format
    enabled: bool = Field(description="For the analytics subscriber: whether telemetry is on.")
    disabled_reason: str | None
    subscriptions: list[SubscriptionOut]
    project_uuid: UUID | None = Field(description="The owning project; null when no project owns it.")
    rate_limit_per_minute: int | None = Field(description=RATE_LIMIT_DESCRIPTION)
    ordered: bool = Field(description=ORDERED_DESCRIPTION)
    paused_until: datetime | None = Field(
        description="Nothing is sent before then: the receiver answered 429 or 503 with Retry-After."
    )
    header_names: list[str] = Field(
        description="The names of its custom `headers`, sorted; never their values."
    )
    last_success_at: datetime | None
    failing_since: datetime | None = Field(description="First failure since the last success.")
    circuit: CircuitOut
    created_at: datetime
    updated_at: datetime


CircuitState = Literal["closed", "open", "half-open"]


class CircuitOut(BaseModel):
    """A webhook's circuit breaker (docs/delivery.md, "The circuit")."""

    state: CircuitState = Field(
        description="`open`: no delivery is attempted until `next_probe_at`; `half-open`: one "
        "delivery (the probe) is being attempted; `closed`: deliveries go as usual."
    )
    since: datetime | None = Field(
        description="When it opened, or when it last closed; null if it never opened."
    )
    next_probe_at: datetime | None = Field(description="While open: when one delivery is attempted.")
    consecutive_failures: int = Field(
        description="Failed attempts in a row (timeout, connection error, 5xx, 429 without Retry-After)."
    )


def circuit_out(subscriber: Subscriber) -> CircuitOut:
    """The subscriber's circuit as the API shows it."""
    state = subscriber.circuit_state
    return CircuitOut.model_validate(
        {
            "state": state,
            "since": subscriber.circuit_since,
            "next_probe_at": subscriber.circuit_next_probe_at if state == "open" else None,
            "consecutive_failures": subscriber.circuit_failures,
        }
    )


class SubscriberCreated(SubscriberOut):
    """The created webhook, with its secret: the only answer that ever shows it."""

    secret: str = Field(examples=[_EXAMPLE_SECRET])


class SecretOut(BaseModel):
    """The new secret after a rotation."""

    secret: str = Field(examples=[_EXAMPLE_SECRET])


TELEMETRY_OFF = "telemetry is off (HERALD_TELEMETRY_URL unset or HERALD_TELEMETRY_DISABLED true)"


def subscriber_out(
    subscriber: Subscriber, subscriptions: Sequence[Subscription], *, telemetry_enabled: bool
) -> SubscriberOut:
    """The API's view of a subscriber. The analytics one is enabled exactly while telemetry is on."""
    enabled, disabled_reason = subscriber.enabled, subscriber.disabled_reason
    if subscriber.kind == "analytics":
        enabled, disabled_reason = telemetry_enabled, None if telemetry_enabled else TELEMETRY_OFF
    return SubscriberOut.model_validate(
        {
            "uuid": subscriber.uuid,
            "type": subscriber.kind,
            "name": subscriber.name,
            "url": subscriber.url,
            "verify_ssl": subscriber.verify_ssl,
            "content_type": subscriber.content_type,
            "format": subscriber.format,
            "enabled": enabled,
            "disabled_reason": disabled_reason,
            "subscriptions": [
                SubscriptionOut(event_type=s.event_type, project_uuid=s.project_uuid, job_uuid=s.job_uuid)
                for s in subscriptions
            ],
            "project_uuid": subscriber.project_uuid,
            "rate_limit_per_minute": subscriber.rate_limit_per_minute,
            "ordered": subscriber.ordered,
            "paused_until": subscriber.paused_until,
            "header_names": subscriber.header_names,
            "last_success_at": subscriber.last_success_at,
            "failing_since": subscriber.failing_since,
            "circuit": circuit_out(subscriber),
            "created_at": subscriber.created_at,
            "updated_at": subscriber.updated_at,
        }
    )


class SubscriberPage(BaseModel):
    items: list[SubscriberOut]
    next_cursor: str | None


class PingResult(BaseModel):
    """What the receiver made of a ``ping``."""

    ok: bool = Field(description="The receiver answered 2xx.")
    status_code: int | None = Field(description="Its status; null when no answer came.")
    duration_ms: float
    error: str | None = Field(
        description="Why it failed (e.g. `HTTP 500`, `connection refused`); null when ok."
    )
    response_body: str | None = Field(
        default=None,
        description=(
            "The start of the receiver's answer (its first 4 KiB, as UTF-8 text), e.g. why it refused "
            "the ping; null when no answer or an empty one came."
        ),
    )
