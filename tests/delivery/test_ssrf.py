"""The delivery-time guard on the HTTP stack: aiohttp's resolver hook (names stubbed, no real DNS),
and the senders of the webhooks held to the portal's destination policy."""

from __future__ import annotations

import socket

import pytest

from service.common.destinations import DestinationRefused
from service.delivery.http import create_http_clients
from service.delivery.sending import SendFailed
from service.delivery.ssrf import GuardedResolver
from tests.support.receiver import running_receiver
from tests.support.resolvers import hanging_resolver, stub_resolver


async def test_guarded_resolver_refuses_a_name_rebound_to_a_private_address() -> None:
    guarded = GuardedResolver(allow_private=False, resolve=stub_resolver({"rebind.test": ["10.0.0.5"]}))
    with pytest.raises(DestinationRefused) as info:
        await guarded.resolve("rebind.test", 443, socket.AF_UNSPEC)
    assert info.value.strerror == "destination rebind.test resolves to a private address (10.0.0.5), refused"
    assert isinstance(info.value, OSError)


async def test_guarded_resolver_keeps_only_allowed_addresses() -> None:
    table = {"mixed.test": ["127.0.0.1", "93.184.216.34", "2606:4700:4700::1111"]}
    guarded = GuardedResolver(allow_private=False, resolve=stub_resolver(table))
    results = await guarded.resolve("mixed.test", 443, socket.AF_UNSPEC)
    assert [result["host"] for result in results] == ["93.184.216.34", "2606:4700:4700::1111"]
    assert results[0]["family"] == socket.AF_INET
    assert results[1]["family"] == socket.AF_INET6
    assert all(result["port"] == 443 and result["hostname"] == "mixed.test" for result in results)
    only_v4 = await guarded.resolve("mixed.test", 443, socket.AF_INET)
    assert [result["host"] for result in only_v4] == ["93.184.216.34"]


async def test_guarded_resolver_allows_private_addresses_when_configured() -> None:
    guarded = GuardedResolver(allow_private=True, resolve=stub_resolver({"receiver.test": ["127.0.0.1"]}))
    results = await guarded.resolve("receiver.test", 80, socket.AF_UNSPEC)
    assert [result["host"] for result in results] == ["127.0.0.1"]
    await guarded.close()


async def test_guarded_resolver_refuses_localhost_without_resolving() -> None:
    guarded = GuardedResolver(allow_private=False, resolve=hanging_resolver)
    with pytest.raises(DestinationRefused, match="loopback"):
        await guarded.resolve("localhost", 80, socket.AF_UNSPEC)


async def test_guarded_resolver_passes_resolution_failures_through() -> None:
    guarded = GuardedResolver(allow_private=False, resolve=stub_resolver({}))
    with pytest.raises(socket.gaierror):
        await guarded.resolve("missing.test", 80, socket.AF_UNSPEC)


async def test_webhooks_held_to_the_portals_policy_get_senders_of_their_own() -> None:
    """Private destinations allowed for the admins' webhooks, not for the portal's: the portal's
    senders refuse the very addresses they would connect to (a name rebound to loopback too)."""
    resolver = stub_resolver({"rebind.test": ["127.0.0.1"]})
    clients = create_http_clients(
        allow_private=True, portal_allow_private=False, max_connections=4, resolver=resolver
    )
    async with running_receiver() as receiver:
        try:
            for verify_ssl in (True, False):
                admins = clients.for_webhook(verify_ssl)
                answered = await admins.post(receiver.url(), content=b"{}", headers={}, timeout_s=5)
                assert answered.status_code == 200
                portals = clients.for_webhook(verify_ssl, portal=True)
                assert portals is not admins
                for url, reason in (
                    (receiver.url(), "destination 127.0.0.1 is a loopback address, refused"),
                    (
                        receiver.url().replace("127.0.0.1", "rebind.test"),
                        "destination rebind.test resolves to a loopback address (127.0.0.1), refused",
                    ),
                ):
                    with pytest.raises(SendFailed) as info:
                        await portals.post(url, content=b"{}", headers={}, timeout_s=5)
                    assert info.value.reason == reason
        finally:
            await clients.aclose()
    assert len(receiver.requests) == 2


async def test_one_policy_for_both_shares_the_senders() -> None:
    clients = create_http_clients(allow_private=False, portal_allow_private=False, max_connections=0)
    try:
        assert clients.portal is None
        assert clients.for_webhook(verify_ssl=True, portal=True) is clients.verified
        assert clients.for_webhook(verify_ssl=False, portal=True) is clients.unverified
    finally:
        await clients.aclose()
