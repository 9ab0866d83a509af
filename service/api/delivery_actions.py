"""Delivery actions: ping a webhook (``test``), redeliver one delivery, recover a subscriber's failures.

The ``test`` routes send through the same rendering, signing and HTTP code as the
dispatcher (``service.delivery.pings``) and store nothing.
"""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api.deps import ResolverDep, StateDep
from service.api.responses import error_responses, json_response
from service.core import webhooks
from service.core.callers import ADMIN
from service.delivery import pings
from service.schemas.deliveries import DeliveryOut, delivery_out
from service.schemas.inputs import Moment
from service.schemas.subscribers import PingResult, WebhookCreate

subscribers_router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])
deliveries_router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])

SubscriberUuid = Annotated[UUID, Path(description="The subscriber's uuid.")]
DeliveryUuid = Annotated[UUID, Path(description="The delivery's uuid.")]


class RecoverIn(BaseModel):
    """The window of ``created_at`` whose failed deliveries become due again."""

    model_config = ConfigDict(extra="forbid")

    since: Moment = Field(description="Inclusive.")
    until: Moment | None = Field(default=None, description="Exclusive; now when absent.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class Recovered(BaseModel):
    scheduled: int = Field(description="How many failed deliveries are due again.")


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
    return await pings.ping_new_webhook(state, ADMIN, body, resolver)


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
    return await pings.ping_webhook(state, ADMIN, uuid)


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
    scheduled = await webhooks.recover(state.services(), ADMIN, uuid, body.since, body.until)
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
    row = await webhooks.redeliver(state.services(), ADMIN, uuid)
    return json_response(delivery_out(row), 202)
