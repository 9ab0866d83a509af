"""The webhook use cases, one function each, shared by the JSON API and the pages: create, change,
enable or disable, delete, rotate the secret, recover failed deliveries, redeliver one delivery.
(Sending a test is ``service.delivery.pings``: it needs the HTTP sender.)

Each takes the ``Caller`` and applies its scope before anything else: a webhook outside it is
``NotFound``, a change by a read-only caller ``Forbidden``, and a URL set by a portal caller is
held to the portal's destination policy (and marked so, ``subscribers.url_from_portal``). Routes
and pages only translate HTTP or a form into these calls and their errors into answers.

Unlike the services below them these own their transactions: a URL's DNS check must run between
the read that validates a request and the write, with no transaction held open across it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import outbox
from service.common.destinations import Resolver
from service.common.secretbox import SecretBox
from service.config import Settings
from service.core import deliveries as delivery_reads
from service.core import subscribers as core
from service.core.callers import Caller
from service.core.subscriptions import subscriptions_of
from service.db import read_session, transaction
from service.models.subscribers import Subscriber, WebhookSubscriber
from service.models.subscriptions import Subscription
from service.schemas.subscribers import WebhookCreate, WebhookUpdate


@dataclass(frozen=True)
class Services:
    """What the use cases use of the running application (``HeraldState.services()``)."""

    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    secrets: SecretBox


@dataclass(frozen=True)
class Created:
    """A new webhook, its subscriptions and its secret in plain text (shown this once)."""

    subscriber: WebhookSubscriber
    subscriptions: list[Subscription]
    secret: str


async def subscriber_in_scope(app: Services, caller: Caller, subscriber_uuid: UUID) -> Subscriber:
    """The subscriber ``subscriber_uuid`` if ``caller`` may see it, else ``NotFound``: a portal
    caller sees only the webhooks its project owns; an admin every subscriber (the use cases
    refuse the analytics one with ``Conflict``, as the API always has)."""
    async with read_session(app.sessions) as session:
        subscriber = await core.get_subscriber(session, subscriber_uuid)
    return subscriber if caller.is_admin else caller.webhook(subscriber)


async def create_webhook(
    app: Services, caller: Caller, body: WebhookCreate, resolver: Resolver | None
) -> Created:
    """``POST /api/v1/subscribers/webhooks``: validate, check the URL, store. A portal caller's
    webhook is owned by its project."""
    caller.require_write()
    body = caller.owned(body)
    async with read_session(app.sessions) as session:
        new = await core.prepare_webhook(session, body)
    await core.check_destination(body.url, caller.destination_policy(app.settings), resolver)
    async with transaction(app.sessions) as session:
        subscriber, subscriptions, secret = await core.create_webhook(
            session, new, app.secrets, in_portal=caller.in_portal
        )
    return Created(subscriber, subscriptions, secret)


async def update_webhook(
    app: Services, caller: Caller, subscriber_uuid: UUID, patch: WebhookUpdate, resolver: Resolver | None
) -> tuple[WebhookSubscriber, list[Subscription]]:
    """``PATCH /api/v1/subscribers/{uuid}``: returns the webhook and its subscriptions."""
    caller.require_write()
    await subscriber_in_scope(app, caller, subscriber_uuid)
    async with read_session(app.sessions) as session:
        specs = await core.patch_subscriptions(session, subscriber_uuid, patch)
    if patch.url is not None:
        await core.check_destination(patch.url, caller.destination_policy(app.settings), resolver)
    grace_s = app.settings.secret_rotation_grace_seconds
    async with transaction(app.sessions) as session:
        subscriber, subscriptions = await core.update_webhook(
            session,
            subscriber_uuid,
            patch,
            specs,
            box=app.secrets,
            rotation_grace_s=grace_s,
            in_portal=caller.in_portal,
        )
        if subscriptions is None:
            subscriptions = (await subscriptions_of(session, [subscriber_uuid]))[subscriber_uuid]
    return subscriber, subscriptions


async def set_enabled(app: Services, caller: Caller, subscriber_uuid: UUID, enabled: bool) -> None:
    """``PATCH {"enabled": ...}``: disabling fails the pending deliveries, enabling clears the clock."""
    await update_webhook(app, caller, subscriber_uuid, WebhookUpdate(enabled=enabled), None)


async def delete_webhook(app: Services, caller: Caller, subscriber_uuid: UUID) -> None:
    """``DELETE /api/v1/subscribers/{uuid}``: its unfinished deliveries are cancelled."""
    caller.require_write()
    await subscriber_in_scope(app, caller, subscriber_uuid)
    async with transaction(app.sessions) as session:
        await core.delete_webhook(session, subscriber_uuid)


async def rotate_secret(app: Services, caller: Caller, subscriber_uuid: UUID) -> str:
    """``POST /api/v1/subscribers/{uuid}/rotate-secret``: returns the new secret."""
    caller.require_write()
    await subscriber_in_scope(app, caller, subscriber_uuid)
    grace_s = app.settings.secret_rotation_grace_seconds
    async with transaction(app.sessions) as session:
        return await core.rotate_secret(session, subscriber_uuid, box=app.secrets, grace_s=grace_s)


async def recover(
    app: Services, caller: Caller, subscriber_uuid: UUID, since: datetime, until: datetime | None
) -> int:
    """``POST /api/v1/subscribers/{uuid}/recover``: the failed deliveries of the webhook created
    in ``[since, until)`` are due again now; returns how many."""
    caller.require_write()
    await subscriber_in_scope(app, caller, subscriber_uuid)
    async with transaction(app.sessions) as session:
        return await outbox.recover(session, subscriber_uuid, since, until)


async def redeliver(app: Services, caller: Caller, delivery_uuid: UUID) -> Any:
    """``POST /api/v1/deliveries/{uuid}/redeliver``: the delivery is due now; a portal caller may
    redeliver only the deliveries of its project's webhooks. Returns the updated row
    (``delivery_columns()``)."""
    caller.require_write()
    if not caller.is_admin:
        async with read_session(app.sessions) as session:
            row = await delivery_reads.get_delivery(session, delivery_uuid)
        await subscriber_in_scope(app, caller, row.subscriber_uuid)
    async with transaction(app.sessions) as session:
        telemetry = app.settings.telemetry_enabled
        return await outbox.redeliver(session, delivery_uuid, telemetry_enabled=telemetry)
