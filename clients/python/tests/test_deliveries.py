"""Deliveries against a real Herald: every page walked, one delivery read, redelivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from herald_client import AsyncHerald, Delivery, Herald, Subscription, Webhook
from herald_process import HeraldServer
from receivers import WebhookReceiver

Project = dict[str, str]


def webhook(herald: Herald, receiver: WebhookReceiver, project: Project) -> Webhook:
    subscriptions = [Subscription("project:*", project_uuid=project["uuid"])]
    hook = herald.create_webhook("deliveries", receiver.url(), subscriptions=subscriptions)
    assert hook.secret is not None
    receiver.secrets = [hook.secret]
    return hook


def eventually(
    read: Callable[[], Delivery], done: Callable[[Delivery], bool], timeout_s: float = 20
) -> Delivery:
    deadline = time.monotonic() + timeout_s
    while not done(delivery := read()):
        assert time.monotonic() < deadline, f"still {delivery.status} after {timeout_s} s"
        time.sleep(0.1)
    return delivery


def test_deliveries_walks_every_page(
    herald_server: HeraldServer, herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = webhook(herald, receiver, project)
    sent = herald.send_events([{"type": "project:created", "project": project} for _ in range(25)])
    receiver.wait_for(25)

    pages: list[str | None] = []
    with (
        httpx.Client(event_hooks={"request": [lambda r: pages.append(r.url.params.get("cursor"))]}) as http,
        Herald(herald_server.base_url, herald_server.admin_key, http_client=http) as client,
    ):
        deliveries = list(client.deliveries(subscriber_uuid=hook.uuid, page_size=10))
    assert len(pages) == 3
    assert pages[0] is None
    assert None not in pages[1:]
    assert len(deliveries) == 25
    assert {d.event_uuid for d in deliveries} == {a.uuid for a in sent}
    assert all(d.subscriber_uuid == hook.uuid and d.event_type == "project:created" for d in deliveries)
    created = [d.created_at for d in deliveries]
    assert created == sorted(created, reverse=True)
    assert all(r.error is None for r in receiver.requests)


def test_a_delivered_delivery_can_be_redelivered(
    herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = webhook(herald, receiver, project)
    accepted = herald.send_event({"type": "project:created", "project": project})
    receiver.wait_for(1)
    [listed] = herald.deliveries(event_uuid=accepted.uuid, subscriber_uuid=hook.uuid)
    delivered = eventually(lambda: herald.get_delivery(listed.uuid), lambda d: d.status == "delivered")
    assert delivered.attempts is not None
    assert [(a.number, a.status_code) for a in delivered.attempts] == [(1, 204)]
    assert [d.uuid for d in herald.deliveries(subscriber_uuid=hook.uuid, status="delivered")] == [listed.uuid]

    again = herald.redeliver(listed.uuid)
    assert again.uuid == listed.uuid
    assert again.status == "pending"
    _, second = receiver.wait_for(2)
    assert second.header("herald-attempt") == "2"
    assert second.header("webhook-id") == accepted.uuid
    assert second.error is None
    final = eventually(lambda: herald.get_delivery(listed.uuid), lambda d: d.attempts_count == 2)
    assert final.attempts is not None
    assert [a.number for a in final.attempts] == [1, 2]


async def test_async_deliveries_and_redeliver(
    aherald: AsyncHerald, herald: Herald, receiver: WebhookReceiver, project: Project
) -> None:
    hook = webhook(herald, receiver, project)
    sent = await aherald.send_events([{"type": "project:created", "project": project} for _ in range(7)])
    await asyncio.to_thread(receiver.wait_for, 7)
    deliveries = [d async for d in aherald.deliveries(subscriber_uuid=hook.uuid, page_size=3)]
    assert {d.event_uuid for d in deliveries} == {a.uuid for a in sent}

    target = deliveries[0]
    for _ in range(200):
        if (await aherald.get_delivery(target.uuid)).status == "delivered":
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the delivery was not delivered in 20 s")
    again = await aherald.redeliver(target.uuid)
    assert again.status == "pending"
    requests = await asyncio.to_thread(receiver.wait_for, 8)
    assert requests[-1].header("herald-delivery-id") == target.uuid
    assert requests[-1].header("herald-attempt") == "2"
