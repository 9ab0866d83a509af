"""The egress proxy: every outgoing request through a real HTTP or SOCKS5 proxy on 127.0.0.1,
the destinations of HERALD_DELIVERY_NO_PROXY directly, and the private-destination guard still
applied to the destination (checked by Herald, the checked address handed to the proxy)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.common.egress import EgressProxy, parse_no_proxy, parse_proxy_url
from service.config import Settings
from service.delivery.http import HttpClients, create_http_clients
from service.delivery.sending import SendFailed
from tests.support.proxies import running_proxy
from tests.support.receiver import running_receiver
from tests.support.resolvers import stub_resolver

SCHEMES = ("http", "socks5")
CREDENTIALS = ("herald", "s3cret-pass")
PUBLIC_ADDRESS = "93.184.216.34"  # a global address the stub resolver hands out; never contacted


def _clients(
    proxy_url: str, *, allow_private: bool, no_proxy: str = "", table: dict[str, list[str]] | None = None
) -> HttpClients:
    egress = parse_proxy_url(proxy_url, parse_no_proxy(no_proxy))
    return create_http_clients(
        allow_private=allow_private, max_connections=4, resolver=stub_resolver(table or {}), egress=egress
    )


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_requests_go_through_the_proxy(scheme: str) -> None:
    async with running_receiver() as receiver, running_proxy(scheme, credentials=CREDENTIALS) as proxy:
        clients = _clients(proxy.url(), allow_private=True)
        try:
            for verify_ssl in (True, False):
                sender = clients.for_webhook(verify_ssl)
                answered = await sender.post(receiver.url(), content=b"{}", headers={}, timeout_s=5)
                assert answered.status_code == 200
        finally:
            await clients.aclose()
    # One tunnel per sender (verified and not), each to the receiver's address.
    assert proxy.targets == [f"127.0.0.1:{receiver.port}"] * 2
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_proxy_is_given_the_address_herald_checked_not_the_name(scheme: str) -> None:
    """Guard on: Herald resolves and checks the name, the proxy connects to that address (so a
    DNS answer changed in between cannot send it elsewhere); TLS and Host still name the host."""
    async with running_receiver() as receiver:
        upstream = ("127.0.0.1", receiver.port)
        async with running_proxy(scheme, upstream=upstream) as proxy:
            clients = _clients(proxy.url(), allow_private=False, table={"public.test": [PUBLIC_ADDRESS]})
            try:
                url = f"http://public.test:{receiver.port}/hook"
                answered = await clients.verified.post(url, content=b"{}", headers={}, timeout_s=5)
            finally:
                await clients.aclose()
    assert answered.status_code == 200
    assert proxy.targets == [f"{PUBLIC_ADDRESS}:{receiver.port}"]
    assert receiver.requests[0].headers["host"] == f"public.test:{receiver.port}"


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_the_guard_refuses_a_private_destination_through_the_proxy(scheme: str) -> None:
    async with running_receiver() as receiver, running_proxy(scheme) as proxy:
        clients = _clients(proxy.url(), allow_private=False, table={"rebind.test": ["127.0.0.1"]})
        try:
            for url, reason in (
                (receiver.url(), "destination 127.0.0.1 is a loopback address, refused"),
                (
                    receiver.url().replace("127.0.0.1", "rebind.test"),
                    "destination rebind.test resolves to a loopback address (127.0.0.1), refused",
                ),
            ):
                with pytest.raises(SendFailed) as info:
                    await clients.verified.post(url, content=b"{}", headers={}, timeout_s=5)
                assert info.value.reason == reason
        finally:
            await clients.aclose()
    assert proxy.targets == []
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("no_proxy", "bypassed", "proxied"),
    [
        ("127.0.0.0/8", "127.0.0.1", "hooks.test"),
        ("127.0.0.1", "127.0.0.1", "hooks.test"),
        ("hooks.test", "hooks.test", "127.0.0.1"),
        (".test", "hooks.test", "127.0.0.1"),
    ],
)
async def test_no_proxy_destinations_are_reached_directly(no_proxy: str, bypassed: str, proxied: str) -> None:
    # The proxy's network reaches the receiver whatever it is asked (it resolves no name here).
    async with (
        running_receiver() as receiver,
        running_proxy("http", upstream=("127.0.0.1", receiver.port)) as proxy,
    ):
        clients = _clients(
            proxy.url(),
            allow_private=True,
            no_proxy=f"other.example, {no_proxy}",
            table={"hooks.test": ["127.0.0.1"]},
        )
        try:
            for host in (bypassed, proxied):
                url = receiver.url().replace("127.0.0.1", host)
                answered = await clients.verified.post(url, content=b"{}", headers={}, timeout_s=5)
                assert answered.status_code == 200
        finally:
            await clients.aclose()
    assert len(receiver.requests) == 2
    # Private destinations allowed: the proxy is given the name, to resolve on its side.
    assert proxy.targets == [f"{proxied}:{receiver.port}"]


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_a_proxy_refusing_the_tunnel_fails_the_attempt_without_its_credentials(scheme: str) -> None:
    async with running_receiver() as receiver, running_proxy(scheme, credentials=CREDENTIALS) as proxy:
        wrong = proxy.url().replace(CREDENTIALS[1], "wrong-pass")
        clients = _clients(wrong, allow_private=True)
        try:
            with pytest.raises(SendFailed) as info:
                await clients.verified.post(receiver.url(), content=b"{}", headers={}, timeout_s=5)
        finally:
            await clients.aclose()
    assert info.value.reason.startswith("connection failed: the proxy refused the tunnel")
    assert "wrong-pass" not in info.value.reason
    assert receiver.requests == []


async def test_an_unreachable_proxy_fails_the_attempt_naming_the_proxy() -> None:
    async with running_proxy("socks5") as proxy:
        url = proxy.url()
    clients = _clients(url, allow_private=True)  # the proxy is closed: nothing listens there
    try:
        with pytest.raises(SendFailed) as info:
            await clients.verified.post("http://127.0.0.1:9/hook", content=b"{}", headers={}, timeout_s=5)
    finally:
        await clients.aclose()
    assert info.value.reason.startswith(
        f"connection failed: Couldn't connect to proxy 127.0.0.1:{proxy.port}"
    )


def test_proxy_urls_are_parsed_and_shown_without_credentials() -> None:
    proxy = parse_proxy_url("socks5://user:p%40ss@proxy.internal")
    assert proxy == EgressProxy(
        scheme="socks5", host="proxy.internal", port=1080, username="user", password="p@ss"
    )
    assert proxy.display() == "socks5://proxy.internal:1080"
    assert parse_proxy_url("https://[::1]:8443/").display() == "https://[::1]:8443"
    assert parse_proxy_url("HTTP://proxy:3128").port == 3128


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:hunter2@proxy:21",
        "http://user:hunter2@",
        "http://user:hunter2@proxy/path",
        "http://u:hunter2@proxy:99999",
    ],
)
def test_a_malformed_proxy_url_is_refused_naming_the_variable_never_the_value(url: str) -> None:
    with pytest.raises(ValueError, match="HERALD_DELIVERY_PROXY_URL") as info:
        parse_proxy_url(url)
    assert "hunter2" not in str(info.value)


def test_no_proxy_matches_names_below_and_addresses_in_networks() -> None:
    rules = parse_no_proxy(" internal.example , *.corp.test, 10.0.0.0/8, ::1 ")
    assert rules.matches("internal.example")
    assert rules.matches("hooks.internal.example")
    assert not rules.matches("notinternal.example")
    assert rules.matches("a.corp.test")
    assert rules.matches("corp.test")
    assert rules.matches("10.1.2.3")
    assert rules.matches("[::1]")
    assert rules.matches("::ffff:10.0.0.1")
    assert not rules.matches("11.0.0.1")
    assert parse_no_proxy("*").matches("anything.example")
    assert not parse_no_proxy("").matches("anything.example")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "host:8080", "bad name", "-bad.example"])
def test_a_malformed_no_proxy_entry_is_refused_naming_the_variable(entry: str) -> None:
    with pytest.raises(ValueError, match=r"HERALD_DELIVERY_NO_PROXY entry #2"):
        parse_no_proxy(f"ok.example,{entry}")


def test_settings_refuse_a_malformed_proxy_naming_the_variable_never_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(delivery_proxy_url="ftp://user:hunter2@proxy:21")
    messages = [error["msg"] for error in info.value.errors()]
    assert any("HERALD_DELIVERY_PROXY_URL" in message for message in messages)
    assert "hunter2" not in " ".join(messages)
    with pytest.raises(ValidationError, match="HERALD_DELIVERY_NO_PROXY entry #1"):
        Settings(delivery_no_proxy="10.0.0.0/99")
    settings = Settings(delivery_proxy_url="socks5://u:p@proxy:1080", delivery_no_proxy="internal.example")
    assert settings.egress_proxy is not None
    assert settings.egress_proxy.bypasses("a.internal.example")
    assert "u:p@" not in repr(settings)
    assert Settings(delivery_proxy_url=" ").egress_proxy is None
