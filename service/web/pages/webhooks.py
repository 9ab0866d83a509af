"""Webhooks: the list with each one's state, a webhook's page, and the create and edit forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.common.secrets import generate_secret
from service.common.urls import url_origin
from service.core import subscribers as core
from service.core import webhooks as use_cases
from service.core.deliveries import DeliveryFilter, list_deliveries
from service.core.subscriptions import subscriptions_of
from service.core.webhook_health import recent_success
from service.db import read_session
from service.delivery import pings
from service.errors import InvalidInput
from service.models.subscribers import SubscriberKind
from service.schemas.common import time_page
from service.schemas.subscribers import PingResult, WebhookCreate, WebhookUpdate
from service.web.context import ResolverDep, Viewer, ViewerDep, read_form
from service.web.pages.common import PAGE_SIZE, Problems, time_cursor
from service.web.webhook_form import (
    CONTENT_TYPES,
    FORMATS,
    WebhookFormValues,
    catalog_families,
    report,
    validated,
)

router = APIRouter()

RECENT_SHOWN = 15
NOTICES = {
    "created": "Webhook created.",
    "saved": "Changes saved.",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled: its pending deliveries are failed (recover them once it is enabled).",
    "deleted": "Webhook deleted; its pending deliveries were cancelled.",
    "recovered": "Failed deliveries of that window are due again.",
}


@router.get("/webhooks")
async def webhooks(viewer: ViewerDep, cursor: str = "", done: str = "") -> Response:
    problems = Problems()
    after = time_cursor(cursor, problems)
    async with read_session(viewer.state.sessions) as session:
        owner = viewer.scope.project_uuid
        kind = SubscriberKind.WEBHOOK
        found = await core.list_subscribers(session, kind, after, PAGE_SIZE + 1, project_uuid=owner)
        page, next_cursor = time_page([w for w in found if viewer.scope.sees_webhook(w)], PAGE_SIZE)
        uuids = [w.uuid for w in page]
        health = await recent_success(session, uuids)
        subscriptions = await subscriptions_of(session, uuids)
    return viewer.render(
        "webhooks.html",
        section="webhooks",
        webhooks=page,
        health=health,
        subscriptions=subscriptions,
        origin=url_origin,
        next_cursor=next_cursor,
        problems=problems,
        notice=NOTICES.get(done),
    )


async def webhook_page(viewer: Viewer, uuid: UUID, status_code: int = 200, **extra: Any) -> Response:
    """A webhook's page; ``extra`` carries what one action shows once (secret, test result...)."""
    async with read_session(viewer.state.sessions) as session:
        webhook = viewer.scope.webhook(await core.get_subscriber(session, uuid))
        subscriptions = (await subscriptions_of(session, [uuid]))[uuid]
        health = (await recent_success(session, [uuid])).get(uuid, (0, 0))
        filters = viewer.scope.deliveries(DeliveryFilter(subscriber_uuid=uuid), [uuid])
        deliveries = await list_deliveries(session, filters, None, RECENT_SHOWN)
    context: dict[str, Any] = {"secret": None, "test_result": None, "notice": None, "error": None}
    context |= extra
    return viewer.render(
        "webhook.html",
        status_code=status_code,
        section="webhooks",
        webhook=webhook,
        subscriptions=subscriptions,
        health=health,
        deliveries=deliveries,
        names={uuid: webhook.name},
        paused_until=webhook.paused_until
        if webhook.paused_until and webhook.paused_until > datetime.now(UTC)
        else None,
        page_url=f"{viewer.base}/webhooks/{uuid}",
        **context,
    )


def form_page(
    viewer: Viewer,
    values: WebhookFormValues,
    problems: Problems,
    *,
    editing: UUID | None = None,
    status_code: int = 200,
    test_result: PingResult | None = None,
    secret_made: bool = False,
) -> Response:
    return viewer.render(
        "webhook_form.html",
        status_code=status_code,
        section="webhooks",
        values=values,
        problems=problems,
        families=catalog_families(owned=not viewer.scope.is_admin or bool(values.owner)),
        formats=FORMATS,
        content_types=CONTENT_TYPES,
        editing=editing,
        test_result=test_result,
        secret_made=secret_made,
    )


@router.get("/webhooks/new")
async def new_webhook(viewer: ViewerDep) -> Response:
    viewer.scope.require_write()
    return form_page(viewer, WebhookFormValues(), Problems())


@router.post("/webhooks/new")
async def create_webhook(request: Request, viewer: ViewerDep, resolver: ResolverDep) -> Response:
    values = WebhookFormValues.from_form(await read_form(request, viewer))
    problems = Problems()
    body = validated(WebhookCreate, values, problems)
    if body is not None:
        try:
            created = await use_cases.create_webhook(viewer.state.services(), viewer.scope, body, resolver)
        except InvalidInput as exc:
            report(exc.errors, problems)
        else:
            notice = NOTICES["created"]
            return await webhook_page(
                viewer, created.subscriber.uuid, 201, secret=created.secret, notice=notice
            )
    return form_page(viewer, values, problems, status_code=422)


@router.post("/webhooks/new/test")
async def test_new_webhook(request: Request, viewer: ViewerDep, resolver: ResolverDep) -> Response:
    values = WebhookFormValues.from_form(await read_form(request, viewer))
    problems = Problems()
    body = validated(WebhookCreate, values, problems)
    result, secret_made = None, False
    if body is not None:
        if body.secret is None:
            # Signed with a secret the form then keeps: the receiver can be given the one the
            # webhook will have, and a test that verifies signatures means something.
            values.secret, secret_made = generate_secret(), True
            body = body.model_copy(update={"secret": values.secret})
        try:
            result = await pings.ping_new_webhook(viewer.state, viewer.scope, body, resolver)
        except InvalidInput as exc:
            report(exc.errors, problems)
    made = secret_made and result is not None  # said only of a secret a test was signed with
    status_code = 422 if problems else 200
    return form_page(viewer, values, problems, test_result=result, secret_made=made, status_code=status_code)


@router.get("/webhooks/{uuid}/edit")
async def edit_webhook(viewer: ViewerDep, uuid: UUID) -> Response:
    viewer.scope.require_write()
    async with read_session(viewer.state.sessions) as session:
        webhook = viewer.scope.webhook(await core.get_subscriber(session, uuid))
        subscriptions = (await subscriptions_of(session, [uuid]))[uuid]
    return form_page(viewer, WebhookFormValues.from_webhook(webhook, subscriptions), Problems(), editing=uuid)


@router.post("/webhooks/{uuid}/edit")
async def save_webhook(request: Request, viewer: ViewerDep, uuid: UUID, resolver: ResolverDep) -> Response:
    values = WebhookFormValues.from_form(await read_form(request, viewer))
    problems = Problems()
    patch = validated(WebhookUpdate, values, problems)
    if patch is not None:
        try:
            await use_cases.update_webhook(viewer.state.services(), viewer.scope, uuid, patch, resolver)
        except InvalidInput as exc:
            report(exc.errors, problems)
        else:
            return viewer.redirect(f"/webhooks/{uuid}?done=saved")
    return form_page(viewer, values, problems, editing=uuid, status_code=422)


# After /webhooks/new, which it would otherwise take.
@router.get("/webhooks/{uuid}")
async def webhook(viewer: ViewerDep, uuid: UUID, done: str = "") -> Response:
    return await webhook_page(viewer, uuid, notice=NOTICES.get(done))
