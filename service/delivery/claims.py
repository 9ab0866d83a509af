"""The dispatcher's side of a claim: claimed rows made into deliveries ready to send.

The claim itself (``pending`` → ``delivering`` under a lease, ``SKIP LOCKED``) is the outbox's
(:mod:`service.outbox.claims`); this module turns the rows into :class:`ClaimedDelivery` values,
with the webhook as it is at claim time, i.e. at send time.

The claim returns the secrets and the custom headers as stored (SecretBox tokens); they are
decrypted here, in Python, through the box's cache (one AES-GCM decryption per stored value and
process, not per claim).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row

from service import outbox
from service.common.secretbox import SecretBox, UndecryptableSecret
from service.core.webhook_headers import HeaderPairs, open_headers
from service.delivery.webhook import WebhookTarget, webhook_target
from service.models.subscribers import SubscriberKind, secret_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this process holds a lease on, with what sending it needs."""

    uuid: UUID
    lease_token: UUID
    event_uuid: UUID
    event_type: str
    subscriber_uuid: UUID
    subscriber_kind: str
    payload: str
    """The stored payload as JSON text, exactly as rendered when the event was recorded."""
    attempts_count: int
    target: WebhookTarget | None = None
    """The webhook as it is at claim time (``None`` for other kinds)."""
    ordered: bool = False
    """The webhook is ordered: its next delivery may be claimed once this one's outcome is written."""
    probe: bool = False
    """It is its webhook's circuit probe (the circuit is half-open)."""
    seq: int = 0
    """The order its event was recorded in (an ordered webhook's run is sent in this order)."""

    @property
    def attempt_number(self) -> int:
        """The number of the attempt about to be made (it keeps counting across redeliveries)."""
        return self.attempts_count + 1


def _secrets(row: asyncpg.Record, box: SecretBox) -> tuple[str, str | None, HeaderPairs]:
    subscriber_uuid: UUID = row["subscriber_uuid"]
    previous: str | None = row["previous_secret"] if row["previous_valid"] else None
    try:
        return (
            box.reveal(row["secret"], secret_context(subscriber_uuid, "secret")),
            None
            if previous is None
            else box.reveal(previous, secret_context(subscriber_uuid, "previous_secret")),
            open_headers(box, subscriber_uuid, row["headers"]),
        )
    except UndecryptableSecret:
        # Not one of this process's keys (the start-up check passed on other rows): the attempt
        # fails as for a malformed secret, nothing is sent (not even without its headers).
        logger.warning("webhook secrets cannot be decrypted", extra={"subscriber": str(subscriber_uuid)})
        return "", None, ()


def _target(row: asyncpg.Record, box: SecretBox) -> WebhookTarget:
    secret, previous, headers = _secrets(row, box)
    return webhook_target(
        subscriber_uuid=row["subscriber_uuid"],
        name=row["name"],
        url=row["url"],
        secret=secret,
        previous_secret=previous,
        previous_valid=previous is not None,
        verify_ssl=row["verify_ssl"],
        content_type=row["content_type"],
        fmt=row["format"],
        headers=headers,
        portal=row["url_from_portal"],
    )


def webhook_deliveries(claim: outbox.Claim[asyncpg.Record], box: SecretBox) -> list[ClaimedDelivery]:
    """The deliveries of a webhook claim (``outbox.claim_webhooks``), each with its target."""
    return [
        ClaimedDelivery(
            uuid=row["uuid"],
            lease_token=claim.lease_token,
            event_uuid=row["event_uuid"],
            event_type=row["event_type"],
            subscriber_uuid=row["subscriber_uuid"],
            subscriber_kind=SubscriberKind.WEBHOOK,
            payload=row["payload"],
            attempts_count=row["attempts_count"],
            target=_target(row, box),
            ordered=row["ordered"],
            probe=row["probe"],
            seq=row["seq"],
        )
        for row in claim.rows
    ]


def kind_deliveries(claim: outbox.Claim[Row[Any]], kind: str) -> list[ClaimedDelivery]:
    """The deliveries of a claim of subscriber kind ``kind`` (``outbox.claim_kind``)."""
    return [
        ClaimedDelivery(
            uuid=row.uuid,
            lease_token=claim.lease_token,
            event_uuid=row.event_uuid,
            event_type=row.event_type,
            subscriber_uuid=row.subscriber_uuid,
            subscriber_kind=kind,
            payload=row.payload,
            attempts_count=row.attempts_count,
        )
        for row in claim.rows
    ]
