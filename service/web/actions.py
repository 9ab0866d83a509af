"""What the pages change, through the very functions the JSON API uses (same rules, same errors).

Every action takes the viewer's scope and checks it first: the object must be inside it, and
the scope must allow changes. This module is the one place the pages reach the delivery engine
and the outbox from, so the behaviour of a button is the behaviour of its endpoint.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from service import outbox
from service.common.destinations import Resolver
from service.core import deliveries as delivery_reads
from service.core import subscribers as core
from service.db import read_session, transaction
from service.delivery import pings
from service.models.subscribers import WebhookSubscriber
from service.schemas.subscribers import PingResult, WebhookCreate, WebhookUpdate
from service.state import HeraldState
from service.web.scope import ViewScope


async def _webhook_in_scope(state: HeraldState, scope: ViewScope, subscriber_uuid: UUID) -> None:
    async with read_session(state.sessions) as session:
        scope.webhook(await core.get_subscriber(session, subscriber_uuid))


async def _check_destination(
    state: HeraldState, scope: ViewScope, url: str, resolver: Resolver | None
) -> None:
    # A URL set in a project's portal is held to the portal's policy (and keeps to it at every
    # delivery: core marks the webhook), one set in the console to the admins'.
    policy = core.destination_policy(state.settings, portal=not scope.is_admin)
    await core.check_destination(
        url, allow_private=policy.allow_private, resolver=resolver, setting=policy.setting
    )


async def create_webhook(
    state: HeraldState, scope: ViewScope, body: WebhookCreate, resolver: Resolver | None
) -> tuple[WebhookSubscriber, str]:
    """Create a webhook as ``POST /api/v1/subscribers/webhooks`` does; returns it and its secret
    (the subscriber holds only the encrypted one)."""
    scope.require_write()
    async with read_session(state.sessions) as session:
        new = await core.prepare_webhook(session, scope.owned(body))
    await _check_destination(state, scope, body.url, resolver)
    async with transaction(state.sessions) as session:
        subscriber, _, secret = await core.create_webhook(
            session, new, state.secrets, in_portal=not scope.is_admin
        )
    return subscriber, secret


async def update_webhook(
    state: HeraldState,
    scope: ViewScope,
    subscriber_uuid: UUID,
    patch: WebhookUpdate,
    resolver: Resolver | None,
) -> None:
    """Change a webhook as ``PATCH /api/v1/subscribers/{uuid}`` does."""
    scope.require_write()
    await _webhook_in_scope(state, scope, subscriber_uuid)
    async with read_session(state.sessions) as session:
        specs = await core.patch_subscriptions(session, subscriber_uuid, patch)
    if patch.url is not None:
        await _check_destination(state, scope, patch.url, resolver)
    grace_s = state.settings.secret_rotation_grace_seconds
    async with transaction(state.sessions) as session:
        await core.update_webhook(
            session,
            subscriber_uuid,
            patch,
            specs,
            box=state.secrets,
            rotation_grace_s=grace_s,
            in_portal=not scope.is_admin,
        )


async def set_enabled(state: HeraldState, scope: ViewScope, subscriber_uuid: UUID, enabled: bool) -> None:
    """``PATCH {"enabled": ...}``: disabling fails the pending deliveries, enabling clears the clock."""
    await update_webhook(state, scope, subscriber_uuid, WebhookUpdate(enabled=enabled), None)


async def delete_webhook(state: HeraldState, scope: ViewScope, subscriber_uuid: UUID) -> None:
    scope.require_write()
    await _webhook_in_scope(state, scope, subscriber_uuid)
    async with transaction(state.sessions) as session:
        await core.delete_webhook(session, subscriber_uuid)


async def rotate_secret(state: HeraldState, scope: ViewScope, subscriber_uuid: UUID) -> str:
    scope.require_write()
    await _webhook_in_scope(state, scope, subscriber_uuid)
    grace_s = state.settings.secret_rotation_grace_seconds
    async with transaction(state.sessions) as session:
        return await core.rotate_secret(session, subscriber_uuid, box=state.secrets, grace_s=grace_s)


async def test_webhook(state: HeraldState, scope: ViewScope, subscriber_uuid: UUID) -> PingResult:
    """Ping a stored webhook (``POST /api/v1/subscribers/{uuid}/test``)."""
    scope.require_write()
    await _webhook_in_scope(state, scope, subscriber_uuid)
    return await pings.ping_webhook(state, subscriber_uuid, portal=not scope.is_admin)


async def test_new_webhook(
    state: HeraldState, scope: ViewScope, body: WebhookCreate, resolver: Resolver | None
) -> PingResult:
    """Ping a webhook before creating it (``POST /api/v1/subscribers/webhooks/test``)."""
    scope.require_write()
    return await pings.ping_new_webhook(state, scope.owned(body), resolver, portal=not scope.is_admin)


async def recover_window(
    state: HeraldState, scope: ViewScope, subscriber_uuid: UUID, since: datetime, until: datetime | None
) -> int:
    """Failed deliveries of the webhook created in ``[since, until)`` due again now."""
    scope.require_write()
    await _webhook_in_scope(state, scope, subscriber_uuid)
    async with transaction(state.sessions) as session:
        return await outbox.recover(session, subscriber_uuid, since, until)


async def redeliver_delivery(state: HeraldState, scope: ViewScope, delivery_uuid: UUID) -> None:
    scope.require_write()
    async with read_session(state.sessions) as session:
        row = await delivery_reads.get_delivery(session, delivery_uuid)
    if not scope.is_admin:
        await _webhook_in_scope(state, scope, row.subscriber_uuid)
    async with transaction(state.sessions) as session:
        await outbox.redeliver(session, delivery_uuid, telemetry_enabled=state.settings.telemetry_enabled)
