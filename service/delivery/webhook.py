"""The webhook deliverer: one signed POST per attempt (docs/webhooks.md, "The request").

:func:`send_attempt` is used by the dispatcher for queued deliveries and by the ``test``
routes for pings, so both go through the same rendering, signing and HTTP code. It never
raises for a failed request: every failure becomes an :class:`AttemptRecord` with a short
reason that names at most ``scheme://host``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID, uuid4

from service.common.formats import ContentType, Format, effective_content_type
from service.common.timefmt import format_utc
from service.core.webhook_headers import HeaderPairs
from service.delivery.formats import render_body
from service.delivery.sending import SendFailed, unexpected_failure
from service.delivery.signing import build_headers

if TYPE_CHECKING:
    # Only the type: the API's ``test`` routes import this module, not the HTTP stack.
    from service.delivery.http import HttpClients

logger = logging.getLogger(__name__)

PING_EVENT_TYPE = "ping"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where and how to send: the subscriber as it is at send time."""

    subscriber_uuid: UUID
    name: str
    url: str
    secrets: tuple[str, ...]
    """The current secret, then the previous one while its rotation grace period lasts."""
    verify_ssl: bool
    content_type: ContentType
    format: Format
    headers: HeaderPairs = ()
    """The webhook's custom headers, decrypted; Herald's own headers win over them."""
    portal: bool = False
    """Held to the portal's destination policy: its URL was set in a project's portal (or this
    is a test sent from one)."""

    def delivered_for(self) -> dict[str, Any]:
        """The envelope's ``delivered_for`` object."""
        return {"uuid": str(self.subscriber_uuid), "name": self.name, "type": "webhook"}


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one HTTP attempt did: a ``delivery_attempts`` row, plus ``retry_after`` for the decision."""

    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


def text_excerpt(body: bytes) -> str | None:
    """The response excerpt as text a PostgreSQL ``text`` column accepts (no NUL characters)."""
    if not body:
        return None
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def build_request(
    target: WebhookTarget,
    *,
    msg_id: str,
    event_type: str,
    delivery_uuid: str,
    attempt: int,
    event: dict[str, Any],
    timestamp: int,
) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of one attempt; the body returned is exactly the one signed."""
    body = render_body(target.format, target.content_type, target.delivered_for(), event)
    headers = build_headers(
        secrets=target.secrets,
        event_uuid=msg_id,
        event_type=event_type,
        delivery_uuid=delivery_uuid,
        attempt=attempt,
        timestamp=timestamp,
        body=body,
        content_type=effective_content_type(target.format, target.content_type),
    )
    if target.headers:
        headers = with_custom_headers(headers, target.headers)
    return body, headers


# Set by the sender for every request (service.delivery.http.build_post), beside build_headers'.
_SENDER_HEADERS = frozenset({"host", "content-length", "accept-encoding"})


def with_custom_headers(own: dict[str, str], custom: HeaderPairs) -> dict[str, str]:
    """``own`` (Herald's headers) plus the webhook's ``custom`` ones; a custom header that has the
    name of one Herald sends is left out, so Herald's always win."""
    taken = own.keys() | _SENDER_HEADERS
    merged = {name: value for name, value in custom if name.lower() not in taken}
    merged.update(own)
    return merged


async def send_attempt(
    clients: HttpClients,
    target: WebhookTarget,
    *,
    msg_id: str,
    event_type: str,
    delivery_uuid: str,
    attempt: int,
    event: dict[str, Any],
    timeout_s: float,
) -> AttemptRecord:
    """Render, sign and POST one attempt within ``timeout_s``; never raises for a failed request."""
    started_at = datetime.now(UTC)
    start_s = time.perf_counter()
    status_code: int | None = None
    retry_after: str | None = None
    excerpt: bytes = b""
    error: str | None = None
    try:
        body, headers = build_request(
            target,
            msg_id=msg_id,
            event_type=event_type,
            delivery_uuid=delivery_uuid,
            attempt=attempt,
            event=event,
            timestamp=int(started_at.timestamp()),
        )
        response = await clients.for_webhook(target.verify_ssl, portal=target.portal).post(
            target.url, content=body, headers=headers, timeout_s=timeout_s
        )
        status_code, retry_after, excerpt = response.status_code, response.retry_after, response.body_excerpt
    except SendFailed as exc:
        error = exc.reason
    except ValueError as exc:
        # A stored secret is malformed: nothing was sent.
        error = unexpected_failure(exc)
    duration_ms = (time.perf_counter() - start_s) * 1000.0
    return AttemptRecord(
        number=attempt,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error,
        response_body=text_excerpt(excerpt),
        retry_after=retry_after,
    )


def ping_event(now: datetime | None = None) -> dict[str, Any]:
    """A fresh ``ping`` notification payload (its uuid is also the request's ``webhook-id``)."""
    when = now or datetime.now(UTC)
    return {
        "uuid": str(uuid4()),
        "type": PING_EVENT_TYPE,
        "timestamp": format_utc(when),
    }


async def send_ping(clients: HttpClients, target: WebhookTarget, *, timeout_s: float) -> AttemptRecord:
    """Send a ``ping`` to ``target`` now (the ``test`` routes); nothing is stored."""
    event = ping_event()
    return await send_attempt(
        clients,
        target,
        msg_id=cast(str, event["uuid"]),
        event_type=PING_EVENT_TYPE,
        delivery_uuid=str(uuid4()),
        attempt=1,
        event=event,
        timeout_s=timeout_s,
    )


def webhook_target(
    *,
    subscriber_uuid: UUID,
    name: str,
    url: str,
    secret: str,
    previous_secret: str | None = None,
    previous_valid: bool = False,
    verify_ssl: bool,
    content_type: str,
    fmt: str,
    headers: HeaderPairs = (),
    portal: bool = False,
) -> WebhookTarget:
    """Build a target from a subscriber's stored values (the CHECK constraints guarantee the literals).

    Requests are signed with ``secret``, and also with ``previous_secret`` while
    ``previous_valid`` (its rotation grace period lasts); ``portal``: held to the portal's
    destination policy.
    """
    return WebhookTarget(
        subscriber_uuid=subscriber_uuid,
        name=name,
        url=url,
        secrets=(secret, previous_secret) if previous_secret and previous_valid else (secret,),
        verify_ssl=verify_ssl,
        content_type=cast(ContentType, content_type),
        format=cast(Format, fmt),
        headers=headers,
        portal=portal,
    )
