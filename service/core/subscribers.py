"""Subscriber life cycle shared by the API and the dispatcher: create, change, disable, delete,
rotate secrets. Functions add to the caller's session and never commit.

Secrets never leave through here except as the return value of ``create_webhook`` (the 201
answer) and ``rotate_secret``, and custom header values never do; nothing is logged beyond
``scheme://host`` of a URL. Both are stored encrypted (``box``, a
:class:`~service.common.secretbox.SecretBox`), bound to their row and column.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service import outbox
from service.catalog import CIRCUIT_CLOSED, SUBSCRIBER_DISABLED, SUBSCRIBER_ENABLED
from service.common.destinations import ForbiddenDestination, Resolver, check_url
from service.common.formats import DEFAULT_RATE_LIMITS_PER_MINUTE, FORM_CONTENT_TYPE, Format, format_for_url
from service.common.secretbox import SecretBox, UndecryptableSecret
from service.common.secrets import generate_secret
from service.common.urls import url_origin
from service.core import operational
from service.core.callers import DestinationPolicy
from service.core.custom_types import custom_type_names
from service.core.subscriptions import SubscriptionSpec, replace_subscriptions, validate_subscriptions
from service.core.webhook_headers import seal_headers
from service.errors import Conflict, InvalidInput, NotFound
from service.models.subscribers import Subscriber, SubscriberKind, WebhookSubscriber, secret_context
from service.models.subscriptions import Subscription
from service.schemas.subscribers import WebhookCreate, WebhookUpdate

logger = logging.getLogger(__name__)

DISABLED_THROUGH_API = "disabled through the API"
CIRCUIT_COLUMNS = [
    "circuit_state",
    "circuit_since",
    "circuit_next_probe_at",
    "circuit_failures",
    "circuit_probes",
]

_DISABLE_SQL = text(
    """
UPDATE subscribers
SET enabled = false, disabled_reason = :reason, updated_at = now()
WHERE uuid = :uuid AND kind = 'webhook' AND enabled
RETURNING uuid
"""
)


async def disable_subscriber(session: AsyncSession, subscriber_uuid: UUID, reason: str) -> Counter[str]:
    """Disable an enabled webhook subscriber with ``reason``, fail its pending deliveries and
    record ``herald:subscriber:disabled``; never commits. Returns the operational events
    recorded (none when it was not an enabled webhook)."""
    disabled = (await session.execute(_DISABLE_SQL, {"uuid": subscriber_uuid, "reason": reason})).first()
    await outbox.fail_pending(session, subscriber_uuid)
    if disabled is None:
        return Counter()
    return await operational.record(session, [operational.Occurrence(SUBSCRIBER_DISABLED, subscriber_uuid)])


async def check_destination(url: str, policy: DestinationPolicy, resolver: Resolver | None = None) -> None:
    """Refuse (422 naming ``url``) a webhook URL that is or resolves to a private address, unless
    ``policy`` allows them (its setting is named in the refusal)."""
    try:
        await check_url(url, allow_private=policy.allow_private, resolver=resolver, setting=policy.setting)
    except ForbiddenDestination as exc:
        raise InvalidInput.single(["body", "url"], exc.message) from None


def _encoding_problem(fmt: str, content_type: str, blame: str) -> dict[str, object] | None:
    if fmt != "standard" and content_type == FORM_CONTENT_TYPE:
        return {
            "loc": ["body", blame],
            "msg": f"format {fmt!r} sends JSON: content_type {FORM_CONTENT_TYPE} needs format 'standard'",
            "type": "value_error",
        }
    return None


@dataclass(frozen=True)
class NewWebhook:
    """A validated create request: the body, its format and its merged subscriptions."""

    body: WebhookCreate
    format: Format
    subscriptions: list[SubscriptionSpec]

    @property
    def rate_limit_per_minute(self) -> int | None:
        """The rate limit asked for; left out, the format's default (none for ``standard``)."""
        if "rate_limit_per_minute" in self.body.model_fields_set:
            return self.body.rate_limit_per_minute
        return DEFAULT_RATE_LIMITS_PER_MINUTE.get(self.format)


async def prepare_webhook(session: AsyncSession, body: WebhookCreate) -> NewWebhook:
    """Validate what the schema cannot: subscriptions against the catalog and the custom types
    that exist now, format vs. encoding.

    ``format`` left out is chosen from the URL (``service.common.formats.format_for_url``).
    """
    fmt = body.format or format_for_url(body.url)
    errors: list[dict[str, object]] = []
    try:
        custom = await custom_type_names(session)
        specs = validate_subscriptions(body.subscriptions, owner=body.project_uuid, custom=custom)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        specs = []
    blame = "content_type" if "content_type" in body.model_fields_set else "format"
    problem = _encoding_problem(fmt, body.content_type, blame)
    if problem is not None:
        errors.append(problem)
    if errors:
        raise InvalidInput(errors)
    return NewWebhook(body=body, format=fmt, subscriptions=specs)


async def create_webhook(
    session: AsyncSession, new: NewWebhook, box: SecretBox, *, in_portal: bool = False
) -> tuple[WebhookSubscriber, list[Subscription], str]:
    """Add a webhook subscriber and its subscriptions; a secret is generated when none was given.
    ``in_portal``: made in a project's portal, so the portal's destination policy holds it.

    Returns the subscriber, its subscriptions and its secret (stored encrypted).
    """
    body = new.body
    subscriber_uuid = uuid4()
    secret = body.secret or generate_secret()
    headers, header_names = seal_headers(box, subscriber_uuid, body.headers)
    subscriber = WebhookSubscriber(
        uuid=subscriber_uuid,
        name=body.name,
        url=body.url,
        secret=box.encrypt(secret, secret_context(subscriber_uuid, "secret")),
        verify_ssl=body.verify_ssl,
        content_type=body.content_type,
        format=new.format,
        enabled=body.enabled,
        disabled_reason=None if body.enabled else DISABLED_THROUGH_API,
        project_uuid=body.project_uuid,
        url_from_portal=in_portal,
        rate_limit_per_minute=new.rate_limit_per_minute,
        ordered=body.ordered,
        headers=headers,
        header_names=header_names,
    )
    session.add(subscriber)
    await session.flush()
    subscriptions = await replace_subscriptions(session, subscriber.uuid, new.subscriptions)
    logger.info(
        "webhook created",
        extra={"subscriber": str(subscriber.uuid), "destination": url_origin(body.url)},
    )
    return subscriber, subscriptions, secret


async def get_subscriber(session: AsyncSession, subscriber_uuid: UUID, *, lock: bool = False) -> Subscriber:
    """The subscriber (webhook or analytics); ``NotFound`` if there is none with this uuid."""
    query = select(Subscriber).where(col(Subscriber.uuid) == subscriber_uuid)
    if lock:
        query = query.with_for_update()
    subscriber = (await session.execute(query)).scalar_one_or_none()
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_uuid} not found")
    return subscriber


async def patch_subscriptions(
    session: AsyncSession, subscriber_uuid: UUID, patch: WebhookUpdate
) -> list[SubscriptionSpec] | None:
    """The validated subscription set of a PATCH (``None`` when it keeps the set), under the rules of
    the webhook's owner; ``NotFound`` for an unknown webhook."""
    if patch.subscriptions is None:
        return None
    owner = (await get_subscriber(session, subscriber_uuid)).project_uuid
    custom = await custom_type_names(session)
    return validate_subscriptions(patch.subscriptions, owner=owner, custom=custom)


def _check_owner_kept(subscriber: Subscriber, patch: WebhookUpdate) -> None:
    if "project_uuid" in patch.model_fields_set and patch.project_uuid != subscriber.project_uuid:
        owner = subscriber.project_uuid
        owner_text = f"owned by project {owner}" if owner else "owned by no project"
        raise InvalidInput.single(
            ["body", "project_uuid"], f"project_uuid cannot change: this webhook is {owner_text}"
        )


async def _locked_webhook(session: AsyncSession, subscriber_uuid: UUID, refusal: str) -> WebhookSubscriber:
    subscriber = await get_subscriber(session, subscriber_uuid, lock=True)
    if not isinstance(subscriber, WebhookSubscriber):
        raise Conflict(f"the analytics subscriber {refusal}")
    return subscriber


async def list_subscribers(
    session: AsyncSession,
    kind: SubscriberKind | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
    *,
    project_uuid: UUID | None = None,
) -> list[Subscriber]:
    """Subscribers newest first (by ``created_at``, then ``uuid``), after the ``after`` position;
    with ``project_uuid``, only the webhooks that project owns."""
    created_at, uuid = col(Subscriber.created_at), col(Subscriber.uuid)
    query = select(Subscriber).order_by(created_at.desc(), uuid.desc()).limit(limit)
    if project_uuid is not None:
        query = query.where(col(Subscriber.project_uuid) == project_uuid)
    if kind is not None:
        query = query.where(col(Subscriber.kind) == kind.value)
    if after is not None:
        query = query.where(tuple_(created_at, uuid) < tuple_(*after))
    return list((await session.execute(query)).scalars())


async def owned_webhooks(session: AsyncSession, project_uuid: UUID) -> list[UUID]:
    """The uuids of the webhooks ``project_uuid`` owns."""
    query = select(col(Subscriber.uuid)).where(col(Subscriber.project_uuid) == project_uuid)
    return list((await session.execute(query)).scalars())


async def subscribers_by_uuid(session: AsyncSession, uuids: list[UUID]) -> list[Subscriber]:
    """The subscribers with these uuids, in the given order (unknown ones left out)."""
    rows = await session.execute(select(Subscriber).where(col(Subscriber.uuid).in_(uuids)))
    found = {subscriber.uuid: subscriber for subscriber in rows.scalars()}
    return [found[uuid] for uuid in uuids if uuid in found]


async def _database_now(session: AsyncSession) -> datetime:
    # The database's clock (the transaction's start), the one created_at and the dispatcher's
    # "previous secret still valid" check (previous_secret_expires_at > now()) use.
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    return now


def current_secret(box: SecretBox, subscriber: Subscriber) -> str | None:
    """The webhook's current secret in plain text (``None`` for the analytics subscriber)."""
    return _revealed(box, subscriber, "secret", subscriber.secret)


def previous_secret(box: SecretBox, subscriber: Subscriber) -> str | None:
    """The webhook's previous secret in plain text, if it has one."""
    return _revealed(box, subscriber, "previous_secret", subscriber.previous_secret)


def _revealed(box: SecretBox, subscriber: Subscriber, column: str, stored: str | None) -> str | None:
    if stored is None:
        return None
    try:
        return box.reveal(stored, secret_context(subscriber.uuid, column))
    except UndecryptableSecret:
        # The start-up check makes this rare (a row written by a replica with other keys): a
        # clear 409 rather than a 500, and the log says which row, never the token.
        logger.error("stored secret cannot be decrypted", extra={"subscriber": str(subscriber.uuid)})
        raise Conflict(
            "this webhook's secret was encrypted with a key this process does not hold "
            "(HERALD_SECRETS_KEYS must be the same on every replica)"
        ) from None


def _set_secret(
    box: SecretBox, subscriber: WebhookSubscriber, secret: str, grace_s: float, now: datetime
) -> None:
    # At most one previous secret: a second rotation within the grace period drops the oldest.
    # The tokens are bound to their column: the old secret is encrypted again as the previous one.
    old = current_secret(box, subscriber)
    uuid = subscriber.uuid
    subscriber.previous_secret = (
        None if old is None else box.encrypt(old, secret_context(uuid, "previous_secret"))
    )
    subscriber.previous_secret_expires_at = now + timedelta(seconds=grace_s)
    subscriber.secret = box.encrypt(secret, secret_context(uuid, "secret"))


async def update_webhook(
    session: AsyncSession,
    subscriber_uuid: UUID,
    patch: WebhookUpdate,
    specs: list[SubscriptionSpec] | None,
    *,
    box: SecretBox,
    rotation_grace_s: float,
    in_portal: bool = False,
) -> tuple[WebhookSubscriber, list[Subscription] | None]:
    """Apply a PATCH: given fields change, ``specs`` (if given) replaces the subscription set.

    Disabling fails the pending deliveries (``subscriber disabled``); ``enabled: true`` clears
    ``disabled_reason`` and the failure clock. A given ``url`` is held to the destination policy
    of where it was set (``in_portal``: a project's portal). Returns the new subscriptions when
    replaced.
    """
    subscriber = await _locked_webhook(session, subscriber_uuid, "cannot be changed")
    _check_owner_kept(subscriber, patch)
    given = patch.model_fields_set - {"project_uuid"}
    if given & {"format", "content_type"}:
        fmt = patch.format if patch.format is not None else subscriber.format
        content_type = patch.content_type if patch.content_type is not None else subscriber.content_type
        problem = _encoding_problem(
            fmt, content_type, "content_type" if "content_type" in given else "format"
        )
        if problem is not None:
            raise InvalidInput([problem])
    for field in ("name", "url", "verify_ssl", "content_type", "format", "rate_limit_per_minute", "ordered"):
        if field in given:
            setattr(subscriber, field, getattr(patch, field))
    if "url" in given:
        subscriber.url_from_portal = in_portal
    now = await _database_now(session)
    if patch.secret is not None and patch.secret != current_secret(box, subscriber):
        _set_secret(box, subscriber, patch.secret, rotation_grace_s, now)
    if patch.headers is not None:
        subscriber.headers, subscriber.header_names = seal_headers(box, subscriber.uuid, patch.headers)
    disabling = patch.enabled is False and subscriber.enabled
    enabling = patch.enabled is True and not subscriber.enabled
    if patch.enabled is True:
        subscriber.enabled, subscriber.disabled_reason, subscriber.failing_since = True, None, None
    elif disabling:
        subscriber.enabled, subscriber.disabled_reason = False, DISABLED_THROUGH_API
    if given:
        subscriber.updated_at = now
    await session.flush()
    if disabling:
        await outbox.fail_pending(session, subscriber.uuid)
    elif "rate_limit_per_minute" in given:
        await outbox.unpark(session, subscriber.uuid)
    subscriptions = None if specs is None else await replace_subscriptions(session, subscriber.uuid, specs)
    # Enabled, a webhook starts with a closed circuit (docs/delivery.md, "The circuit").
    circuit_closed = enabling and await outbox.close_circuit(session, subscriber.uuid)
    if enabling:
        await session.refresh(subscriber, attribute_names=CIRCUIT_COLUMNS)
    if disabling or enabling:
        # After the new subscriptions: a webhook enabled with a herald: subscription hears of it.
        change = SUBSCRIBER_DISABLED if disabling else SUBSCRIBER_ENABLED
        occurrences = [operational.Occurrence(change, subscriber.uuid)]
        if circuit_closed:
            occurrences.append(operational.Occurrence(CIRCUIT_CLOSED, subscriber.uuid))
        await operational.record(session, occurrences)
    if "url" in given:
        logger.info(
            "webhook destination changed",
            extra={
                "subscriber": str(subscriber.uuid),
                "destination": url_origin(subscriber.url or ""),
            },
        )
    return subscriber, subscriptions


async def delete_webhook(session: AsyncSession, subscriber_uuid: UUID) -> None:
    """Remove a webhook and its subscriptions; its pending and in-flight deliveries are cancelled
    (they stay listable by ``subscriber_uuid``)."""
    subscriber = await _locked_webhook(session, subscriber_uuid, "cannot be deleted")
    await outbox.cancel_unfinished(session, subscriber.uuid)
    await session.delete(subscriber)  # subscriptions go with it (ON DELETE CASCADE)
    await session.flush()
    logger.info("webhook deleted", extra={"subscriber": str(subscriber_uuid)})


async def rotate_secret(
    session: AsyncSession, subscriber_uuid: UUID, *, box: SecretBox, grace_s: float
) -> str:
    """Give the webhook a new secret; the old one keeps signing for ``grace_s`` seconds."""
    subscriber = await _locked_webhook(session, subscriber_uuid, "has no secret to rotate")
    secret = generate_secret()
    now = await _database_now(session)
    _set_secret(box, subscriber, secret, grace_s, now)
    subscriber.updated_at = now
    await session.flush()
    logger.info("webhook secret rotated", extra={"subscriber": str(subscriber_uuid)})
    return secret
