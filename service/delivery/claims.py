"""The dispatcher's side of a claim: claimed rows made into deliveries ready to send.

The claim itself (``pending`` → ``delivering`` under a lease, ``SKIP LOCKED``) is the outbox's
(:mod:`service.outbox.claims`); this module turns the rows into :class:`ClaimedDelivery` values,
with the webhook as it is at claim time, i.e. at send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row

from service import outbox
from service.delivery.webhook import WebhookTarget, webhook_target
from service.models.subscribers import SubscriberKind


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

    @property
    def attempt_number(self) -> int:
        """The number of the attempt about to be made (it keeps counting across redeliveries)."""
        return self.attempts_count + 1


def webhook_deliveries(claim: outbox.Claim[asyncpg.Record]) -> list[ClaimedDelivery]:
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
            target=webhook_target(
                subscriber_uuid=row["subscriber_uuid"],
                name=row["name"],
                url=row["url"],
                secret=row["secret"],
                previous_secret=row["previous_secret"],
                previous_valid=row["previous_valid"],
                verify_ssl=row["verify_ssl"],
                content_type=row["content_type"],
                fmt=row["format"],
            ),
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
