"""The egress proxy in a running Herald: a webhook delivery, a test send and a telemetry batch all
reach their receivers through the proxy named by HERALD_DELIVERY_PROXY_URL."""

from __future__ import annotations

import pytest

from tests.support.api import create_webhook, ingest
from tests.support.app import AppFactory
from tests.support.posthog_receiver import TELEMETRY, running_posthog
from tests.support.proxies import running_proxy
from tests.support.receiver import running_receiver


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_deliveries_test_sends_and_telemetry_go_through_the_proxy(
    app_factory: AppFactory, scheme: str
) -> None:
    async with (
        running_receiver() as receiver,
        running_posthog() as posthog,
        running_proxy(scheme) as proxy,
        app_factory(
            **TELEMETRY,
            telemetry_url=posthog.url,
            allow_private_destinations=True,  # the receiver is on 127.0.0.1
            delivery_proxy_url=proxy.url(),
        ) as herald,
    ):
        hook = await create_webhook(herald.client, receiver.url())
        await ingest(herald.client)
        await receiver.wait_for(1)
        await posthog.wait_for_events(1)
        tested = await herald.client.post(f"/api/v1/subscribers/{hook['uuid']}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["ok"] is True
        await receiver.wait_for(2)
    receiver_target = f"127.0.0.1:{receiver.port}"
    posthog_target = posthog.url.split("://", 1)[1].split("/", 1)[0]
    # Every connection Herald opened went through the proxy: to the receiver (the delivery and the
    # test send, on one or more pooled tunnels) and to the telemetry backend.
    assert set(proxy.targets) == {receiver_target, posthog_target}
