"""The OpenAPI ``webhooks`` section: one entry per format and content type, with examples that are
what a real receiver gets and signatures that verify."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, get_args
from urllib.parse import parse_qs

import pytest
from herald_client import WebhookVerificationError, verify_webhook

from service.api.outgoing import (
    EXAMPLE_BODY,
    EXAMPLE_EVENT_UUID,
    EXAMPLE_SECRET,
    EXAMPLE_TIMESTAMP,
    example_request,
)
from service.common.formats import ContentType, Format
from service.common.timefmt import format_utc
from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory, RunningApp
from tests.support.db import FAST
from tests.support.receiver import Receiver, running_receiver

ENTRIES: dict[str, tuple[Format, ContentType]] = {
    "standard-json": ("standard", "application/json"),
    "standard-form": ("standard", "application/x-www-form-urlencoded"),
    "slack": ("slack", "application/json"),
    "teams": ("teams", "application/json"),
    "discord": ("discord", "application/json"),
}
SIGNED_HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature"}
EVERY_HEADER = SIGNED_HEADERS | {"herald-event-type", "herald-delivery-id", "herald-attempt", "user-agent"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def webhooks_of(herald: RunningApp) -> dict[str, Any]:
    response = await herald.client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    section: dict[str, Any] = schema["webhooks"]
    return section


async def test_every_format_and_content_type_has_an_entry_with_headers_and_an_example(
    herald: RunningApp,
) -> None:
    section = await webhooks_of(herald)
    assert set(section) == set(ENTRIES)
    assert {fmt for fmt, _ in ENTRIES.values()} == set(get_args(Format))
    for name, (_, content_type) in ENTRIES.items():
        operation = section[name]["post"]
        assert {p["name"] for p in operation["parameters"] if p["in"] == "header"} == EVERY_HEADER
        signature = next(p for p in operation["parameters"] if p["name"] == "webhook-signature")
        assert "HMAC-SHA256" in signature["description"]
        assert list(operation["requestBody"]["content"]) == [content_type]
        assert operation["requestBody"]["content"][content_type]["example"]
        assert {"2XX", "410", "429", "default"} <= set(operation["responses"])


@pytest.mark.parametrize("name", list(ENTRIES))
def test_each_example_is_signed_with_the_published_secret(name: str) -> None:
    body, headers = example_request(*ENTRIES[name])
    envelope = verify_webhook(EXAMPLE_SECRET, headers, body, tolerance=timedelta(days=365 * 100))
    if name.startswith("standard"):
        assert envelope["event"]["uuid"] == str(EXAMPLE_EVENT_UUID)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(EXAMPLE_SECRET, headers, body + b" ", tolerance=timedelta(days=365 * 100))


async def test_the_examples_are_what_a_receiver_gets_for_that_event(
    app_factory: AppFactory, receiver: Receiver
) -> None:
    async with app_factory(**FAST, allow_private_destinations=True) as herald:
        section = await webhooks_of(herald)
        for name, (fmt, content_type) in ENTRIES.items():
            await create_webhook(
                herald.client,
                receiver.url(f"/{name}"),
                name="CI failures",
                format=fmt,
                content_type=content_type,
                subscriptions=[{"event_type": "project:one-off-job:pipeline-run:failed"}],
            )
        sent = EXAMPLE_BODY | {"uuid": str(EXAMPLE_EVENT_UUID), "timestamp": format_utc(EXAMPLE_TIMESTAMP)}
        await ingest(herald.client, sent)
        for name in ENTRIES:
            await receiver.wait_for(1, f"/{name}")

    def example(name: str) -> Any:
        _, content_type = ENTRIES[name]
        return section[name]["post"]["requestBody"]["content"][content_type]["example"]

    [json_request] = receiver.on("/standard-json")
    assert json.loads(json_request.body)["event"] == example("standard-json")["event"]
    [form_request] = receiver.on("/standard-form")
    received_form = parse_qs(form_request.body.decode())
    example_form = parse_qs(example("standard-form"))
    assert json.loads(received_form["event"][0]) == json.loads(example_form["event"][0])
    assert set(received_form) == set(example_form) == {"delivered_for", "event"}
    for name in ("slack", "teams", "discord"):
        [chat_request] = receiver.on(f"/{name}")
        assert json.loads(chat_request.body) == example(name)
    assert set(json_request.headers) >= SIGNED_HEADERS
