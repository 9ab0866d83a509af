"""Response (and batch request) shapes of the events API, for validation and the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.deliveries import DeliveryOut


class EventAccepted(BaseModel):
    """The answer to an ingested event (the original answer again for a replay)."""

    uuid: UUID
    type: str
    timestamp: datetime
    deliveries: int = Field(description="Deliveries scheduled for this event, the analytics one included.")
    replayed: bool = Field(
        default=False, description="Batch items only: true for a replay (left out otherwise)."
    )


class BatchAccepted(BaseModel):
    items: list[EventAccepted]


class NotificationPayload(BaseModel):
    """An event as users see it: root fields, then one nested section per layer."""

    model_config = ConfigDict(extra="allow")

    uuid: UUID
    type: str
    timestamp: datetime


class EventPage(BaseModel):
    items: list[NotificationPayload]
    next_cursor: str | None


class EventDetail(BaseModel):
    event: NotificationPayload
    deliveries: list[DeliveryOut]


class EventTypeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    description: str
    optional_filters: list[list[str]]
    operational: bool = Field(
        description="True for Herald's own `herald:*` types, which only `herald:` patterns match."
    )
    custom: bool = Field(default=False, description="True for a type defined by POST /api/v1/event-types.")
    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", description="A custom type's JSON Schema of `data` (null otherwise)."
    )


class EventTypeList(BaseModel):
    items: list[EventTypeOut]
    next_cursor: None = None
