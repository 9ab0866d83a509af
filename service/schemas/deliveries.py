"""Delivery objects as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from service.models.deliveries import DeliveryStatus

RESPONSE_BODY_MAX_BYTES = 4096


class DeliveryOut(BaseModel):
    """A delivery: one event on its way to one subscriber."""

    model_config = ConfigDict(from_attributes=True)

    uuid: UUID
    event_uuid: UUID
    event_type: str
    subscriber_uuid: UUID
    status: DeliveryStatus
    attempts_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime


class AttemptOut(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None = Field(description="At most 4 KiB of the receiver's answer.")


class DeliveryDetail(DeliveryOut):
    """A delivery with its attempt history."""

    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def delivery_columns() -> str:
    """The SQL select list that fills a ``DeliveryOut``."""
    return (
        "uuid, event_uuid, event_type, subscriber_uuid, status, attempts_count, next_attempt_at, "
        "delivered_at, last_error, created_at"
    )


def delivery_out(row: Any) -> dict[str, Any]:
    """A JSON-ready delivery object from a row selected with ``delivery_columns()``."""
    return DeliveryOut.model_validate(row).model_dump(mode="json")


def cut_utf8(body: str | None, limit_bytes: int) -> str | None:
    """``body`` cut to at most ``limit_bytes`` of UTF-8 (never inside a character)."""
    if body is None:
        return None
    encoded = body.encode()
    return body if len(encoded) <= limit_bytes else encoded[:limit_bytes].decode(errors="ignore")


def attempt_out(row: Any) -> AttemptOut:
    """An attempt object from a ``delivery_attempts`` row, its response body cut to 4 KiB."""
    attempt = AttemptOut.model_validate(row)
    body = cut_utf8(attempt.response_body, RESPONSE_BODY_MAX_BYTES)
    return attempt.model_copy(update={"response_body": body})
