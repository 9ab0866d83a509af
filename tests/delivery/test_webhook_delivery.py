"""The webhook request Herald sends, end to end: ingest → dispatcher → a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import asyncpg
import pytest
from standardwebhooks import Webhook

from service.delivery.signing import user_agent
from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST, wait_for_statuses
from tests.support.receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def herald_fast(app_factory: AppFactory) -> AsyncIterator[RunningApp]:
    async with app_factory(**FAST) as running:
        yield running


def verify(secret: str, headers: dict[str, str], body: bytes) -> object:
    """Verify with the official Standard Webhooks package, unmodified (raises if the signature is wrong).

    The package parses the body as JSON after checking the signature; a form-encoded body
    that got that far was verified.
    """
    try:
        return Webhook(secret).verify(body, headers)
    except json.JSONDecodeError:
        return "verified (not JSON)"


async def test_delivery_is_signed_and_verifies_with_standardwebhooks(
    herald_fast: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    hook = await create_webhook(herald_fast.client, receiver.url())
    event = await ingest(herald_fast.client, "project:one-off-job:pipeline-run:failed")
    [request] = await receiver.wait_for(1)
    assert verify(hook["secret"], request.headers, request.body) is not None
    body = json.loads(request.body)
    assert body["delivered_for"] == {"uuid": hook["uuid"], "name": hook["name"], "type": "webhook"}
    assert body["event"]["uuid"] == event["uuid"]
    assert body["event"]["type"] == "project:one-off-job:pipeline-run:failed"
    headers = request.headers
    assert headers["webhook-id"] == event["uuid"]
    assert headers["herald-event-type"] == "project:one-off-job:pipeline-run:failed"
    assert headers["herald-attempt"] == "1"
    assert headers["user-agent"] == user_agent()
    assert headers["content-type"] == "application/json"
    row = await db.fetchrow("SELECT uuid FROM deliveries WHERE subscriber_uuid = $1::uuid", hook["uuid"])
    assert row is not None
    assert headers["herald-delivery-id"] == str(row["uuid"])
    await wait_for_statuses(db, {"delivered": 1})


async def test_the_envelope_carries_the_payload_stored_at_ingest(
    herald_fast: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    await create_webhook(herald_fast.client, receiver.url())
    event = await ingest(herald_fast.client, "project:cron-job:run:pipeline-run:succeeded")
    [request] = await receiver.wait_for(1)
    stored = await db.fetchval("SELECT payload::text FROM events WHERE uuid = $1::uuid", event["uuid"])
    assert json.loads(request.body)["event"] == json.loads(stored)
    assert request.body.endswith(b'"event":' + stored.encode() + b"}")


async def test_form_encoded_body_holds_two_json_fields(herald_fast: RunningApp, receiver: Receiver) -> None:
    hook = await create_webhook(
        herald_fast.client, receiver.url(), content_type="application/x-www-form-urlencoded"
    )
    event = await ingest(herald_fast.client)
    [request] = await receiver.wait_for(1)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    verify(hook["secret"], request.headers, request.body)
    fields = parse_qs(request.body.decode(), strict_parsing=True)
    assert json.loads(fields["delivered_for"][0])["uuid"] == hook["uuid"]
    assert json.loads(fields["event"][0])["uuid"] == event["uuid"]


@pytest.mark.parametrize(("fmt", "key"), [("slack", "text"), ("teams", "text"), ("discord", "content")])
async def test_chat_formats_send_a_short_sentence(
    herald_fast: RunningApp, receiver: Receiver, fmt: str, key: str
) -> None:
    hook = await create_webhook(herald_fast.client, receiver.url(), format=fmt)
    await ingest(herald_fast.client, "project:one-off-job:pipeline-run:failed")
    [request] = await receiver.wait_for(1)
    verify(hook["secret"], request.headers, request.body)
    body = json.loads(request.body)
    assert list(body) == [key]
    assert "failed" in body[key]
    assert "{" not in body[key]  # a sentence, not a JSON dump
    assert request.headers["content-type"] == "application/json"


async def test_rotated_secret_signs_twice_and_both_verify(
    herald_fast: RunningApp, receiver: Receiver
) -> None:
    hook = await create_webhook(herald_fast.client, receiver.url())
    rotated = await herald_fast.client.post(f"/api/v1/subscribers/{hook['uuid']}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    await ingest(herald_fast.client)
    [request] = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(hook["secret"], request.headers, request.body)
    verify(new_secret, request.headers, request.body)


async def test_url_and_format_are_read_at_send_time(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    # Ingest with the dispatcher off, change the webhook, then deliver.
    async with app_factory() as herald:
        hook = await create_webhook(herald.client, receiver.url("/old"))
        await ingest(herald.client)
        patched = await herald.client.patch(
            f"/api/v1/subscribers/{hook['uuid']}", json={"url": receiver.url("/new"), "format": "slack"}
        )
        assert patched.status_code == 200, patched.text
    async with app_factory(**FAST):
        [request] = await receiver.wait_for(1)
    assert request.path == "/new"
    assert "text" in json.loads(request.body)
