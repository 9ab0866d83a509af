"""Webhooks against a real Herald: create, list, change, delete, rotate; and the requests
Herald then signs and sends, verified by a real receiver with ``verify_webhook``."""

from __future__ import annotations

import asyncio
import base64
import secrets

import pytest
from herald_client import (
    AsyncHerald,
    ContentType,
    Herald,
    NotFoundError,
    Subscription,
    WebhookVerificationError,
    verify_webhook,
)
from receivers import WebhookReceiver

Project = dict[str, str]
FORM: ContentType = "application/x-www-form-urlencoded"


def scoped(project: Project) -> list[Subscription]:
    return [Subscription("project:*", project_uuid=project["uuid"])]


def test_herald_signs_json_webhooks_that_verify(
    herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = herald.create_webhook("ops", receiver.url(), subscriptions=scoped(project))
    assert hook.secret is not None
    assert hook.secret.startswith("whsec_")
    assert hook.secret not in repr(hook)
    assert (hook.format, hook.content_type, hook.enabled) == ("standard", "application/json", True)
    assert hook.subscriptions == scoped(project)
    receiver.secrets = [hook.secret]

    accepted = herald.send_event({"type": "project:created", "project": project})
    assert accepted.deliveries == 1
    [request] = receiver.wait_for(1)
    assert request.error is None
    assert request.envelope is not None
    assert request.envelope["delivered_for"] == {"uuid": hook.uuid, "name": "ops", "type": "webhook"}
    assert request.envelope["event"] == herald.get_event(accepted.uuid).event
    assert request.header("webhook-id") == accepted.uuid

    # The same real request, spoiled, is refused.
    tampered = request.body.replace(b'"demo"', b'"evil"')
    with pytest.raises(WebhookVerificationError):
        verify_webhook(hook.secret, request.headers, tampered)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, request.headers, request.body)


def test_herald_signs_form_encoded_webhooks_that_verify(
    herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver.secrets = [secret]
    hook = herald.create_webhook(
        "form", receiver.url("/form"), subscriptions=scoped(project), secret=secret, content_type=FORM
    )
    assert hook.content_type == FORM
    assert hook.secret == secret

    accepted = herald.send_event({"type": "project:created", "project": project})
    [request] = receiver.wait_for(1)
    assert request.header("content-type").startswith(FORM)
    assert request.body.startswith(b"delivered_for=")
    assert request.error is None
    assert request.envelope is not None
    assert request.envelope["event"]["uuid"] == accepted.uuid
    assert request.envelope["delivered_for"]["name"] == "form"


def test_after_a_rotation_old_and_new_secrets_both_verify(
    herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = herald.create_webhook("rotating", receiver.url(), subscriptions=scoped(project))
    assert hook.secret is not None
    new_secret = herald.rotate_secret(hook.uuid)
    assert new_secret.startswith("whsec_")
    assert new_secret != hook.secret
    receiver.secrets = [new_secret]

    herald.send_event({"type": "project:created", "project": project})
    [request] = receiver.wait_for(1)
    assert request.error is None
    assert len(request.header("webhook-signature").split()) == 2
    assert verify_webhook(hook.secret, request.headers, request.body) == request.envelope


def test_webhooks_are_listed_across_pages_changed_and_deleted(herald: Herald, project: Project) -> None:
    created = [
        herald.create_webhook(f"hook {n}", f"http://127.0.0.1:9/{n}", subscriptions=scoped(project))
        for n in range(3)
    ]
    listed = list(herald.webhooks(page_size=1))
    assert {h.uuid for h in created} <= {h.uuid for h in listed}
    assert all(h.secret is None and h.type == "webhook" for h in listed)

    changed = herald.update_webhook(
        created[0].uuid, enabled=False, name="renamed", subscriptions=["project:*:failed"]
    )
    assert (changed.enabled, changed.name) == (False, "renamed")
    assert changed.subscriptions == [Subscription("project:*:failed")]
    assert herald.get_webhook(created[0].uuid) == changed

    herald.delete_webhook(created[1].uuid)
    with pytest.raises(NotFoundError):
        herald.get_webhook(created[1].uuid)
    assert created[1].uuid not in {h.uuid for h in herald.webhooks()}


async def test_async_webhook_roundtrip(
    aherald: AsyncHerald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = await aherald.create_webhook(
        "async", receiver.url(), subscriptions=[{"event_type": "project:*", "project_uuid": project["uuid"]}]
    )
    assert hook.secret is not None
    receiver.secrets = [hook.secret]
    accepted = await aherald.send_event({"type": "project:created", "project": project})
    [request] = await asyncio.to_thread(receiver.wait_for, 1)
    assert request.error is None
    assert request.envelope is not None
    assert request.envelope["event"]["uuid"] == accepted.uuid
    assert hook.uuid in {h.uuid async for h in aherald.webhooks(page_size=2)}
    rotated = await aherald.rotate_secret(hook.uuid)
    assert rotated != hook.secret
    await aherald.delete_webhook(hook.uuid)
    with pytest.raises(NotFoundError):
        await aherald.get_webhook(hook.uuid)
