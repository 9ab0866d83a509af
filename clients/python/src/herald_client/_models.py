"""What Herald answers, as small frozen dataclasses.

Every model keeps the JSON it was built from in ``raw`` (left out of ``repr`` and of
comparisons), so fields a newer Herald adds are never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "cancelled"]
ContentType = Literal["application/json", "application/x-www-form-urlencoded"]
Format = Literal["standard", "slack", "teams", "discord"]


def parse_datetime(value: Any) -> datetime:
    """An RFC 3339 timestamp as Herald writes it (``...Z`` or ``...+00:00``)."""
    text = str(value)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else parse_datetime(value)


@dataclass(frozen=True)
class Accepted:
    """Herald's answer to an ingested event. ``replayed`` is true when the event was already
    recorded (same ``uuid``, same content): this is then the original answer."""

    uuid: str
    type: str
    timestamp: datetime
    deliveries: int
    replayed: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, replayed: bool = False) -> Accepted:
        return cls(
            uuid=str(data["uuid"]),
            type=str(data["type"]),
            timestamp=parse_datetime(data["timestamp"]),
            deliveries=int(data["deliveries"]),
            replayed=bool(data.get("replayed", replayed)),
        )


@dataclass(frozen=True)
class EventType:
    """One type of the catalog. ``optional_filters`` lists the scopes a subscription to it
    may have, e.g. ``[["project_uuid"], ["project_uuid", "job_uuid"]]``."""

    name: str
    description: str
    optional_filters: list[list[str]]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventType:
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            optional_filters=[list(scope) for scope in data.get("optional_filters", [])],
            raw=data,
        )


@dataclass(frozen=True)
class Subscription:
    """Which events a webhook receives: a type or ``*`` pattern, optionally scoped."""

    event_type: str
    project_uuid: str | None = None
    job_uuid: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subscription:
        return cls(
            event_type=str(data["event_type"]),
            project_uuid=None if data.get("project_uuid") is None else str(data["project_uuid"]),
            job_uuid=None if data.get("job_uuid") is None else str(data["job_uuid"]),
        )

    def to_json(self) -> dict[str, str]:
        body = {"event_type": self.event_type}
        if self.project_uuid is not None:
            body["project_uuid"] = self.project_uuid
        if self.job_uuid is not None:
            body["job_uuid"] = self.job_uuid
        return body


@dataclass(frozen=True)
class Webhook:
    """A webhook subscriber. ``secret`` is only known in the answer to :meth:`create_webhook`
    (Herald never shows it again); it is left out of ``repr``."""

    uuid: str
    name: str
    url: str | None
    enabled: bool
    format: str
    content_type: str
    verify_ssl: bool
    subscriptions: list[Subscription]
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    type: str = "webhook"
    secret: str | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        return cls(
            uuid=str(data["uuid"]),
            name=str(data["name"]),
            url=data.get("url"),
            enabled=bool(data["enabled"]),
            format=str(data.get("format", "standard")),
            content_type=str(data.get("content_type", "application/json")),
            verify_ssl=bool(data.get("verify_ssl", True)),
            subscriptions=[Subscription.from_json(s) for s in data.get("subscriptions", [])],
            disabled_reason=data.get("disabled_reason"),
            created_at=parse_datetime(data["created_at"]),
            updated_at=parse_datetime(data["updated_at"]),
            type=str(data.get("type", "webhook")),
            secret=data.get("secret"),
            raw=data,
        )


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt of a delivery; ``response_body`` holds at most 4 KiB."""

    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            number=int(data["number"]),
            started_at=parse_datetime(data["started_at"]),
            duration_ms=float(data["duration_ms"]),
            status_code=data.get("status_code"),
            error=data.get("error"),
            response_body=data.get("response_body"),
        )


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one subscriber. ``attempts`` is filled in by
    :meth:`get_delivery` only (``None`` in lists)."""

    uuid: str
    event_uuid: str
    subscriber_uuid: str
    status: DeliveryStatus
    attempts_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime
    event_type: str | None = None
    attempts: list[Attempt] | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        attempts = data.get("attempts")
        return cls(
            uuid=str(data["uuid"]),
            event_uuid=str(data["event_uuid"]),
            subscriber_uuid=str(data["subscriber_uuid"]),
            status=data["status"],
            attempts_count=int(data["attempts_count"]),
            next_attempt_at=_optional_datetime(data.get("next_attempt_at")),
            delivered_at=_optional_datetime(data.get("delivered_at")),
            last_error=data.get("last_error"),
            created_at=parse_datetime(data["created_at"]),
            event_type=data.get("event_type"),
            attempts=None if attempts is None else [Attempt.from_json(a) for a in attempts],
            raw=data,
        )


@dataclass(frozen=True)
class EventDetail:
    """One recorded event: its notification payload and its deliveries."""

    event: dict[str, Any]
    deliveries: list[Delivery]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventDetail:
        return cls(event=dict(data["event"]), deliveries=[Delivery.from_json(d) for d in data["deliveries"]])


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; the iterators walk ``next_cursor`` for you."""

    items: list[T]
    next_cursor: str | None
