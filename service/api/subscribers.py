"""Subscribers: webhooks (create, list, read, change, delete, rotate their secret) and the
analytics subscriber (listed, read-only). The ``test`` and ``recover`` routes live with the
delivery engine. An admin key calls the use cases (``service.core.webhooks``) as ``ADMIN``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from service.api.deps import ResolverDep, StateDep
from service.api.responses import error_responses
from service.core import subscribers as core
from service.core import webhooks
from service.core.callers import ADMIN
from service.core.subscriptions import subscribed_to, subscriptions_of
from service.db import read_session
from service.models.subscribers import Subscriber, SubscriberKind
from service.schemas.common import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    decode_time_cursor,
    time_page,
)
from service.schemas.inputs import NO_NUL
from service.schemas.subscribers import (
    SecretOut,
    SubscriberCreated,
    SubscriberOut,
    SubscriberPage,
    SubscriberType,
    WebhookCreate,
    WebhookUpdate,
    subscriber_out,
)
from service.state import HeraldState

SubscriberUuid = Annotated[UUID, Path(description="The subscriber's uuid.")]
EventTypePath = Annotated[
    str, Path(max_length=200, description="A catalog or operational event type."), NO_NUL
]

router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])


async def _views(state: HeraldState, subscribers: list[Subscriber]) -> list[SubscriberOut]:
    async with read_session(state.sessions) as session:
        subscriptions = await subscriptions_of(session, [s.uuid for s in subscribers])
    telemetry = state.settings.telemetry_enabled
    return [subscriber_out(s, subscriptions[s.uuid], telemetry_enabled=telemetry) for s in subscribers]


# Fixed paths first: they must win over the templated ``/{uuid}`` ones.
@router.post(
    "/webhooks",
    status_code=201,
    summary="Create a webhook subscriber",
    description=(
        "A secret is generated when none is given; this answer is the only one that ever shows it. "
        "The URL may not point at a private address unless HERALD_ALLOW_PRIVATE_DESTINATIONS is true."
    ),
    responses=error_responses(413, 422, 503),
)
async def create_webhook(body: WebhookCreate, state: StateDep, resolver: ResolverDep) -> SubscriberCreated:
    created = await webhooks.create_webhook(state.services(), ADMIN, body, resolver)
    telemetry = state.settings.telemetry_enabled
    view = subscriber_out(created.subscriber, created.subscriptions, telemetry_enabled=telemetry)
    return SubscriberCreated(**view.model_dump(), secret=created.secret)


@router.get(
    "",
    summary="List subscribers",
    description="Newest first; the analytics subscriber is listed with `type: analytics`.",
    responses=error_responses(422, 503),
)
async def list_subscribers(
    state: StateDep,
    type: Annotated[SubscriberType | None, Query(description="Only subscribers of this type.")] = None,
    project_uuid: Annotated[UUID | None, Query(description="Only the webhooks this project owns.")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> SubscriberPage:
    after = decode_time_cursor(cursor)
    kind = SubscriberKind(type) if type is not None else None
    async with read_session(state.sessions) as session:
        found = await core.list_subscribers(session, kind, after, limit + 1, project_uuid=project_uuid)
    page, next_cursor = time_page(found, limit)
    return SubscriberPage(items=await _views(state, page), next_cursor=next_cursor)


@router.get(
    "/subscribed-to/{event_type}",
    summary="Which webhooks an event would be delivered to",
    description=(
        "Enabled webhooks with a subscription matching `event_type` (a catalog or `herald:` name; "
        "only `herald:` patterns reach the latter). A project- or "
        "job-scoped subscription counts only when the query gives that `project_uuid` (and `job_uuid`); "
        "a webhook owned by a project is listed only for that `project_uuid`."
    ),
    responses=error_responses(422, 503),
)
async def list_subscribed_to(
    state: StateDep,
    event_type: EventTypePath,
    project_uuid: Annotated[UUID | None, Query(description="The event's project.")] = None,
    job_uuid: Annotated[UUID | None, Query(description="The event's job (needs `project_uuid`).")] = None,
) -> SubscriberPage:
    async with read_session(state.sessions) as session:
        uuids = await subscribed_to(session, event_type, project_uuid, job_uuid)
        found = await core.subscribers_by_uuid(session, uuids)
    return SubscriberPage(items=await _views(state, found), next_cursor=None)


@router.get("/{uuid}", summary="One subscriber", responses=error_responses(404, 422, 503))
async def get_subscriber(uuid: SubscriberUuid, state: StateDep) -> SubscriberOut:
    async with read_session(state.sessions) as session:
        subscriber = await core.get_subscriber(session, uuid)
    [view] = await _views(state, [subscriber])
    return view


@router.patch(
    "/{uuid}",
    summary="Change a webhook subscriber",
    description=(
        "Any writable field; `subscriptions` replaces the set. `enabled: false` fails pending deliveries "
        "(`subscriber disabled`); `enabled: true` re-enables. The analytics subscriber → 409."
    ),
    responses=error_responses(404, 409, 413, 422, 503),
)
async def update_webhook(
    uuid: SubscriberUuid, body: WebhookUpdate, state: StateDep, resolver: ResolverDep
) -> SubscriberOut:
    subscriber, subscriptions = await webhooks.update_webhook(state.services(), ADMIN, uuid, body, resolver)
    return subscriber_out(subscriber, subscriptions, telemetry_enabled=state.settings.telemetry_enabled)


@router.delete(
    "/{uuid}",
    status_code=204,
    summary="Delete a webhook subscriber",
    description=(
        "Its subscriptions go; its pending deliveries become `cancelled` and its deliveries stay listable "
        "by `subscriber_uuid`. The analytics subscriber → 409."
    ),
    responses=error_responses(404, 409, 422, 503),
)
async def delete_webhook(uuid: SubscriberUuid, state: StateDep) -> Response:
    await webhooks.delete_webhook(state.services(), ADMIN, uuid)
    return Response(status_code=204)


@router.post(
    "/{uuid}/rotate-secret",
    summary="Give a webhook a new secret",
    description=(
        "Answers the new secret. The previous one keeps signing (a second signature) for "
        "HERALD_SECRET_ROTATION_GRACE_SECONDS; at most one previous secret is kept."
    ),
    responses=error_responses(404, 409, 422, 503),
)
async def rotate_secret(uuid: SubscriberUuid, state: StateDep) -> SecretOut:
    return SecretOut(secret=await webhooks.rotate_secret(state.services(), ADMIN, uuid))
