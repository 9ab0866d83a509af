"""Test pings: a ``ping`` event sent now to a stored webhook, or to one not created yet, through the
same rendering, signing, custom headers and HTTP code as deliveries (``service.delivery.webhook``).
Nothing is stored. The API's ``test`` routes and the pages' **Send test** buttons both call these,
the use cases of sending a test (the others are in ``service.core.webhooks``), with the ``Caller``.

A test sent by a portal caller is held to the portal's destination policy
(``HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS``), as are the tests of a webhook whose URL was set
there: a tenant must not use them to probe Herald's own network.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from service.common.destinations import Resolver
from service.common.secrets import generate_secret
from service.core import subscribers as core
from service.core.callers import Caller
from service.core.webhook_headers import webhook_headers
from service.core.webhooks import subscriber_in_scope
from service.db import read_session
from service.delivery.retry import status_reason
from service.delivery.webhook import AttemptRecord, WebhookTarget, send_ping, webhook_target
from service.errors import Conflict
from service.models.subscribers import WebhookSubscriber
from service.schemas.subscribers import PingResult, WebhookCreate
from service.state import HeraldState


def ping_result(record: AttemptRecord) -> PingResult:
    """What the receiver made of the ping, with the start of its answer; a non-2xx answer is
    named (``HTTP 500``)."""
    error = record.error
    if error is None and not record.ok and record.status_code is not None:
        error = status_reason(record.status_code)
    return PingResult(
        ok=record.ok,
        status_code=record.status_code,
        duration_ms=record.duration_ms,
        error=error,
        response_body=record.response_body,
    )


async def _ping(state: HeraldState, target: WebhookTarget) -> PingResult:
    record = await send_ping(state.http, target, timeout_s=state.settings.delivery_timeout_seconds)
    return ping_result(record)


async def ping_new_webhook(
    state: HeraldState, caller: Caller, body: WebhookCreate, resolver: Resolver | None
) -> PingResult:
    """Validate ``body`` as for create (by ``caller``), then ping its URL, signed with its secret
    or a throw-away one."""
    caller.require_write()
    body = caller.owned(body)
    async with read_session(state.sessions) as session:
        new = await core.prepare_webhook(session, body)
    await core.check_destination(body.url, caller.destination_policy(state.settings), resolver)
    target = webhook_target(
        subscriber_uuid=UUID(int=0),
        name=body.name,
        url=body.url,
        secret=body.secret or generate_secret(),
        verify_ssl=body.verify_ssl,
        content_type=body.content_type,
        fmt=new.format,
        headers=tuple(body.headers.items()),
        portal=caller.in_portal,
    )
    return await _ping(state, target)


async def ping_webhook(state: HeraldState, caller: Caller, subscriber_uuid: UUID) -> PingResult:
    """Ping a stored webhook (disabled ones too), signed as its deliveries are; the analytics
    subscriber → ``Conflict``, an unknown uuid or one outside ``caller``'s scope → ``NotFound``."""
    caller.require_write()
    subscriber = await subscriber_in_scope(state.services(), caller, subscriber_uuid)
    secret = core.current_secret(state.secrets, subscriber)  # decrypted (cached) to sign
    if not isinstance(subscriber, WebhookSubscriber) or subscriber.url is None or secret is None:
        raise Conflict("the analytics subscriber cannot be tested")
    expires = subscriber.previous_secret_expires_at
    target = webhook_target(
        subscriber_uuid=subscriber.uuid,
        name=subscriber.name,
        url=subscriber.url,
        secret=secret,
        previous_secret=core.previous_secret(state.secrets, subscriber),
        previous_valid=expires is not None and expires > datetime.now(UTC),
        verify_ssl=subscriber.verify_ssl,
        content_type=subscriber.content_type,
        fmt=subscriber.format,
        headers=webhook_headers(state.secrets, subscriber),
        portal=caller.in_portal or subscriber.url_from_portal,
    )
    return await _ping(state, target)
