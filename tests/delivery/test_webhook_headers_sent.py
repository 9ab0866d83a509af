"""Custom headers on the wire: a real receiver on 127.0.0.1 gets them on every attempt and test,
Herald's own headers win, and the claim decrypts a set once per webhook and version."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

import asyncpg
import pytest

from service import keyring, outbox
from service.common.secretbox import SecretBox
from service.common.secrets import generate_secret
from service.core.webhook_headers import seal_headers
from service.delivery.claims import webhook_deliveries
from service.delivery.signing import user_agent
from service.delivery.webhook import with_custom_headers
from service.models.subscribers import secret_context
from tests.delivery.test_webhook_delivery import verify
from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, wait_for_statuses
from tests.support.receiver import Receiver, Reply, running_receiver

SUBSCRIBERS = "/api/v1/subscribers"
TOKEN = "Bearer receiver-api-token-0123456789"
HEADERS = {"Authorization": TOKEN, "X-Tenant": "acme\tone", "x-lower": "kept as given"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def herald_fast(app_factory: AppFactory) -> AsyncIterator[RunningApp]:
    async with app_factory(**FAST) as running:
        yield running


def carries(received: dict[str, str], headers: dict[str, str]) -> bool:
    """Whether a request (headers lower-cased by the receiver) carried ``headers`` exactly."""
    return all(received.get(name.lower()) == value for name, value in headers.items())


async def test_a_delivery_and_its_retry_carry_the_headers_and_herald_keeps_its_own(
    herald_fast: RunningApp, receiver: Receiver, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.reply("/hook", Reply(status=500), then=Reply(status=200))
    hook = await create_webhook(herald_fast.client, receiver.url(), headers=HEADERS)
    await ingest(herald_fast.client, "project:created")
    first, retry = await receiver.wait_for(2)
    assert (first.attempt, retry.attempt) == (1, 2)
    assert first.delivery_id == retry.delivery_id
    for request in (first, retry):
        assert carries(request.headers, HEADERS)
        assert verify(hook["secret"], request.headers, request.body) is not None
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == user_agent()
    await wait_for_statuses(db, {"delivered": 1})
    assert TOKEN not in caplog.text


async def test_a_patched_set_is_sent_from_the_next_delivery_on(
    herald_fast: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    hook = await create_webhook(herald_fast.client, receiver.url(), headers=HEADERS)
    await ingest(herald_fast.client, "project:created")
    await receiver.wait_for(1)
    path = f"{SUBSCRIBERS}/{hook['uuid']}"
    assert (await herald_fast.client.patch(path, json={"headers": {"X-Next": "2"}})).status_code == 200
    await ingest(herald_fast.client, "project:created")
    _, second = await receiver.wait_for(2)
    assert second.headers["x-next"] == "2"
    assert "authorization" not in second.headers
    assert (await herald_fast.client.patch(path, json={"headers": {}})).status_code == 200
    await ingest(herald_fast.client, "project:created")
    _, _, third = await receiver.wait_for(3)
    assert "x-next" not in third.headers
    await wait_for_statuses(db, {"delivered": 3})


async def test_test_sends_carry_the_headers(herald: RunningApp, receiver: Receiver) -> None:
    hook = await create_webhook(herald.client, receiver.url(), headers=HEADERS)
    stored = await herald.client.post(f"{SUBSCRIBERS}/{hook['uuid']}/test")
    assert stored.json()["ok"] is True
    before_creating = await herald.client.post(
        f"{SUBSCRIBERS}/webhooks/test",
        json={"name": "not yet", "url": receiver.url("/new"), "headers": {"X-Trial": "yes"}},
    )
    assert before_creating.json()["ok"] is True
    ping, trial = await receiver.wait_for(2)
    assert carries(ping.headers, HEADERS)
    assert ping.headers["herald-event-type"] == "ping"
    assert trial.headers["x-trial"] == "yes"
    for answer in (stored, before_creating):
        assert TOKEN not in answer.text


async def test_herald_s_own_headers_win_over_a_custom_one_of_the_same_name(
    herald: RunningApp, receiver: Receiver
) -> None:
    # accept-encoding is not refused (the contract does not list it), but Herald sends its own.
    hook = await create_webhook(
        herald.client, receiver.url(), headers={"Accept-Encoding": "gzip", "X-A": "1"}
    )
    assert (await herald.client.post(f"{SUBSCRIBERS}/{hook['uuid']}/test")).json()["ok"] is True
    [ping] = await receiver.wait_for(1)
    assert ping.headers["accept-encoding"] == "identity"
    assert ping.headers["x-a"] == "1"


def test_custom_headers_never_replace_herald_s() -> None:
    own = {"webhook-id": "msg", "content-type": "application/json", "user-agent": "Herald/1"}
    custom = (("Content-Type", "text/plain"), ("USER-AGENT", "x"), ("Host", "evil"), ("X-Ok", "1"))
    assert with_custom_headers(own, custom) == own | {"X-Ok": "1"}


def _row(box: SecretBox, subscriber: UUID, headers: dict[str, str]) -> Any:
    """A claimed row as the claim returns it (a mapping, like ``asyncpg.Record``)."""
    sealed, _ = seal_headers(box, subscriber, headers)
    return {
        "uuid": uuid4(),
        "event_uuid": uuid4(),
        "event_type": "project:created",
        "subscriber_uuid": subscriber,
        "payload": "{}",
        "attempts_count": 0,
        "name": "hook",
        "url": "http://127.0.0.1:9/hook",
        "secret": box.encrypt(generate_secret(), secret_context(subscriber, "secret")),
        "previous_secret": None,
        "previous_valid": False,
        "verify_ssl": True,
        "content_type": "application/json",
        "format": "standard",
        "headers": sealed,
        "ordered": False,
        "url_from_portal": False,
        "probe": False,
        "seq": 1,
    }


def test_the_claim_decrypts_a_set_once_per_webhook_and_version() -> None:
    box = SecretBox(keyring.parse_keys(keyring.new_key()))
    subscriber = uuid4()
    row = _row(box, subscriber, HEADERS)
    newer = _row(box, subscriber, {"X-Next": "2"})
    claim = outbox.Claim(lease_token=uuid4(), rows=[row, row, newer])
    with mock.patch.object(box, "decrypt", wraps=box.decrypt) as decrypt:
        first = webhook_deliveries(claim, box)
        again = webhook_deliveries(claim, box)
    assert [d.target.headers for d in first if d.target] == [tuple(HEADERS.items())] * 2 + [
        (("X-Next", "2"),)
    ]
    assert [d.target for d in again] == [d.target for d in first]
    # Secret and headers of the first row, then those of the newer version: four, not twelve.
    assert decrypt.call_count == 4


def test_headers_no_key_opens_fail_the_attempt_rather_than_send_without_them() -> None:
    box = SecretBox(keyring.parse_keys(keyring.new_key()))
    other = SecretBox(keyring.parse_keys(keyring.new_key()))
    subscriber = uuid4()
    row = _row(box, subscriber, HEADERS) | {"headers": seal_headers(other, subscriber, HEADERS)[0]}
    [delivery] = webhook_deliveries(outbox.Claim(lease_token=uuid4(), rows=[row]), box)
    assert delivery.target is not None
    assert delivery.target.secrets == ("",)  # signing refuses it: nothing is sent
    assert delivery.target.headers == ()
