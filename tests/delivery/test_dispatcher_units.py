"""The delivery engine's pure parts, without a server: request building, the failure clock, backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError
from standardwebhooks import Webhook

from service.common.secrets import generate_secret
from service.db import is_database_unavailable
from service.delivery.backoff import backoff_s
from service.delivery.claims import ClaimedDelivery
from service.delivery.outcomes import Completion
from service.delivery.retry import Delivered, Failed, Outcome, Retry
from service.delivery.webhook import (
    AttemptRecord,
    WebhookTarget,
    build_request,
    webhook_target,
)
from service.outbox import clock_updates

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVENT = {
    "uuid": "5b0f3a9e-8d0c-4c86-9a53-2f1c8e1d7a41",
    "type": "project:created",
    "timestamp": "2026-11-24T12:00:00Z",
}


def _target(
    fmt: str = "standard",
    content_type: str = "application/json",
    secret: str = "",
    previous_secret: str | None = None,
    previous_valid: bool = False,
) -> WebhookTarget:
    return webhook_target(
        subscriber_uuid=UUID(int=7),
        name="hook",
        url="https://example.com/hook?token=secret",
        secret=secret or generate_secret(),
        previous_secret=previous_secret,
        previous_valid=previous_valid,
        verify_ssl=True,
        content_type=content_type,
        fmt=fmt,
    )


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("standard", "application/json"),
        ("standard", "application/x-www-form-urlencoded"),
        ("slack", "application/json"),
        ("teams", "application/json"),
        ("discord", "application/json"),
    ],
)
def test_the_bytes_sent_are_the_bytes_signed(fmt: str, content_type: str) -> None:
    secret = generate_secret()
    target = _target(fmt, content_type, secret)
    body, headers = build_request(
        target,
        msg_id=EVENT["uuid"],
        event_type=EVENT["type"],
        delivery_uuid=str(uuid4()),
        attempt=3,
        event=EVENT,
        timestamp=int(datetime.now(UTC).timestamp()),
    )
    try:
        Webhook(secret).verify(body, headers)
    except json.JSONDecodeError:
        assert content_type != "application/json"  # verified, then not JSON: the form body
    assert headers["herald-attempt"] == "3"
    assert headers["webhook-id"] == EVENT["uuid"]


def test_previous_secret_signs_only_during_its_grace() -> None:
    assert _target(secret="new", previous_secret="old", previous_valid=True).secrets == ("new", "old")
    assert _target(secret="new", previous_secret="old", previous_valid=False).secrets == ("new",)
    assert _target(secret="new", previous_secret=None, previous_valid=True).secrets == ("new",)
    assert _target(secret="new").secrets == ("new",)


def _completion(subscriber: UUID, outcome: Outcome, started: datetime, kind: str = "webhook") -> Completion:
    delivery = ClaimedDelivery(uuid4(), uuid4(), uuid4(), "project:created", subscriber, kind, "{}", 0)
    record = AttemptRecord(1, started, 10.0, 200 if isinstance(outcome, Delivered) else 500, None, None)
    return Completion(delivery, record, outcome, started + timedelta(seconds=1), "https://example.com")


def test_failure_clock_starts_at_the_first_failure_after_the_last_success() -> None:
    a, b, c = UUID(int=1), UUID(int=2), UUID(int=3)
    retry = Retry(at=T0, wait_s=1.0, reason="HTTP 500")
    batch = [
        _completion(a, retry, T0),  # before a's success: forgotten
        _completion(a, Delivered(), T0 + timedelta(seconds=5)),
        _completion(a, Failed("HTTP 502"), T0 + timedelta(seconds=9)),
        _completion(a, retry, T0 + timedelta(seconds=7)),
        _completion(b, Delivered(), T0),
        _completion(c, retry, T0 + timedelta(seconds=3)),
        _completion(c, Failed("connection refused"), T0 + timedelta(seconds=4)),
        _completion(UUID(int=4), retry, T0, kind="analytics"),  # no failure clock for analytics
    ]
    updates = {u.subscriber_uuid: u for u in clock_updates(batch)}
    assert set(updates) == {a, b, c}
    assert updates[a].success_at == T0 + timedelta(seconds=6)
    assert updates[a].failure_since == T0 + timedelta(seconds=7)
    assert updates[a].last_reason == "HTTP 502"
    assert (updates[b].success_at, updates[b].failure_since) == (T0 + timedelta(seconds=1), None)
    assert (updates[c].success_at, updates[c].failure_since) == (None, T0 + timedelta(seconds=3))
    assert updates[c].last_reason == "connection refused"


def test_backoff_doubles_up_to_a_ceiling() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff_s(100) == 5.0


def test_database_outages_are_transient_and_bugs_are_not() -> None:
    assert is_database_unavailable(ConnectionRefusedError())
    assert is_database_unavailable(OperationalError("SELECT 1", {}, asyncpg.exceptions.AdminShutdownError()))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = asyncpg.exceptions.ConnectionDoesNotExistError("gone")
    assert is_database_unavailable(wrapped)
    assert is_database_unavailable(asyncpg.exceptions.TooManyConnectionsError("full"))
    assert is_database_unavailable(asyncpg.InternalClientError("cannot switch to state"))
    assert is_database_unavailable(DBAPIError("SELECT 1", {}, asyncpg.exceptions.DeadlockDetectedError()))
    assert not is_database_unavailable(ValueError("bug"))
    assert not is_database_unavailable(asyncpg.exceptions.UndefinedColumnError("no such column"))
    assert not is_database_unavailable(
        DBAPIError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("duplicate key"))
    )
