"""Delivery actions: ping a webhook (``test``), redeliver one delivery, recover a subscriber's failures.

The ``test`` routes send through the same rendering, signing and HTTP code as the
dispatcher (``service.delivery.webhook``) and store nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Self
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from service import outbox
from service.api.deps import ResolverDep, StateDep
from service.api.responses import error_responses, json_response
from service.common.secrets import generate_secret
from service.core import subscribers as core
from service.db import read_session, transaction
from service.delivery.retry import status_reason
from service.delivery.webhook import AttemptRecord, WebhookTarget, send_ping, webhook_target
from service.errors import Conflict
from service.models.subscribers import WebhookSubscriber
from service.schemas.deliveries import DeliveryOut, delivery_out
from service.schemas.subscribers import WebhookCreate

subscribers_router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])
deliveries_router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])

SubscriberUuid = Annotated[UUID, Path(description="The subscriber's uuid.")]
DeliveryUuid = Annotated[UUID, Path(description="The delivery's uuid.")]


class PingResult(BaseModel):
    """What the receiver made of a ``ping``."""

    ok: bool = Field(description="The receiver answered 2xx.")
    status_code: int | None = Field(description="Its status; null when no answer came.")
    duration_ms: float
    error: str | None = Field(
        description="Why it failed (e.g. `HTTP 500`, `connection refused`); null when ok."
    )


class RecoverIn(BaseModel):
    """The window of ``created_at`` whose failed deliveries become due again."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Inclusive.")
    until: AwareDatetime | None = Field(default=None, description="Exclusive; now when absent.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class Recovered(BaseModel):
    scheduled: int = Field(description="How many failed deliveries are due again.")


def _ping_result(record: AttemptRecord) -> PingResult:
    error = record.error
    if error is None and not record.ok and record.status_code is not None:
        error = status_reason(record.status_code)
    return PingResult(
        ok=record.ok, status_code=record.status_code, duration_ms=record.duration_ms, error=error
    )


async def _ping(state: StateDep, target: WebhookTarget) -> PingResult:
    record = await send_ping(state.http, target, timeout_s=state.settings.delivery_timeout_seconds)
    return _ping_result(record)


# Fixed paths first: /webhooks/test must not be taken for /{uuid}/test.
@subscribers_router.post(
    "/webhooks/test",
    summary="Ping a webhook before creating it",
    description=(
        "Validates the body as for create, then sends a `ping` event now, signed with the given secret "
        "(or a throw-away one). Nothing is stored. `ok: false` when the receiver fails or cannot be reached."
    ),
    response_model=PingResult,
    responses=error_responses(413, 422, 503),
)
async def test_new_webhook(body: WebhookCreate, state: StateDep, resolver: ResolverDep) -> PingResult:
    new = core.prepare_webhook(body)
    await core.check_destination(
        body.url, allow_private=state.settings.allow_private_destinations, resolver=resolver
    )
    target = webhook_target(
        subscriber_uuid=UUID(int=0),
        name=body.name,
        url=body.url,
        secret=body.secret or generate_secret(),
        verify_ssl=body.verify_ssl,
        content_type=body.content_type,
        fmt=new.format,
    )
    return await _ping(state, target)


@subscribers_router.post(
    "/{uuid}/test",
    summary="Ping a webhook",
    description=(
        "Sends a `ping` event now through the same signing and format code as deliveries (disabled webhooks "
        "too). `ok: false` when the receiver fails or cannot be reached. The analytics subscriber → 409."
    ),
    response_model=PingResult,
    responses=error_responses(404, 409, 422, 503),
)
async def test_webhook(uuid: SubscriberUuid, state: StateDep) -> PingResult:
    async with read_session(state.sessions) as session:
        subscriber = await core.get_subscriber(session, uuid)
    secret = core.current_secret(state.secrets, subscriber)
    if not isinstance(subscriber, WebhookSubscriber) or subscriber.url is None or secret is None:
        raise Conflict("the analytics subscriber cannot be tested")
    expires = subscriber.previous_secret_expires_at
    target = webhook_target(
        subscriber_uuid=subscriber.uuid,
        name=subscriber.name,
        url=subscriber.url,
        secret=secret,
        previous_secret=core.previous_secret(state.secrets, subscriber),
        previous_valid=expires is not None and expires > _now(),
        verify_ssl=subscriber.verify_ssl,
        content_type=subscriber.content_type,
        fmt=subscriber.format,
    )
    return await _ping(state, target)


@subscribers_router.post(
    "/{uuid}/recover",
    status_code=202,
    summary="Retry a webhook's failed deliveries",
    description=(
        "Every `failed` delivery of the webhook created in [`since`, `until`) is due again now; "
        "attempt numbers continue. A disabled webhook or the analytics subscriber → 409."
    ),
    response_model=Recovered,
    responses=error_responses(404, 409, 422, 503),
)
async def recover_subscriber(uuid: SubscriberUuid, body: RecoverIn, state: StateDep) -> Response:
    async with transaction(state.sessions) as session:
        scheduled = await outbox.recover(session, uuid, body.since, body.until)
    return json_response({"scheduled": scheduled}, 202)


@deliveries_router.post(
    "/{uuid}/redeliver",
    status_code=202,
    summary="Send a delivery again",
    description=(
        "Due now whatever its status, except `delivering` or `cancelled`, or when its subscriber is disabled "
        "(409). Its attempt count and history continue; past the retry schedule it gets one more attempt."
    ),
    response_model=DeliveryOut,
    responses=error_responses(404, 409, 422, 503),
)
async def redeliver_delivery(uuid: DeliveryUuid, state: StateDep) -> Response:
    async with transaction(state.sessions) as session:
        row = await outbox.redeliver(session, uuid, telemetry_enabled=state.settings.telemetry_enabled)
    return json_response(delivery_out(row), 202)


def _now() -> datetime:
    return datetime.now(UTC)
