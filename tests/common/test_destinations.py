"""The private-destination policy: forbidden addresses and the URL checks (no real DNS)."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys

import pytest

from service.common.destinations import (
    DestinationRefused,
    ForbiddenDestination,
    address_kind,
    check_literal_host,
    check_url,
    is_forbidden_address,
    literal_refusal,
    resolved_refusal,
)
from tests.support.resolvers import hanging_resolver, stub_resolver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2001:db8::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
def test_private_and_special_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


def test_address_kind_names_the_reason() -> None:
    assert address_kind(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert address_kind(ipaddress.ip_address("::ffff:127.0.0.1")) == "loopback"
    assert address_kind(ipaddress.ip_address("10.1.2.3")) == "private"
    assert address_kind(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert address_kind(ipaddress.ip_address("8.8.8.8")) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.5/hook?token=abc",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9000/x",
        "http://LOCALHOST./x",
        "http://api.localhost/x",
    ],
)
async def test_literal_private_destinations_are_refused_at_create(url: str) -> None:
    with pytest.raises(ForbiddenDestination) as info:
        await check_url(url, allow_private=False, resolver=stub_resolver({}))
    assert "refused" in info.value.message
    assert "/hook" not in info.value.message
    assert "token" not in info.value.message


async def test_name_resolving_to_a_private_address_is_refused_at_create() -> None:
    resolver = stub_resolver({"internal.test": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(ForbiddenDestination) as info:
        await check_url("https://internal.test/path?secret=1", allow_private=False, resolver=resolver)
    assert info.value.host == "internal.test"
    assert "internal.test" in str(info.value)
    assert "10.0.0.5" in str(info.value)
    assert "secret" not in str(info.value)


async def test_name_resolving_to_public_addresses_is_accepted() -> None:
    resolver = stub_resolver({"hooks.example.test": ["93.184.216.34", "2606:4700:4700::1111"]})
    await check_url("https://hooks.example.test/x", allow_private=False, resolver=resolver)


async def test_name_that_does_not_resolve_yet_is_accepted() -> None:
    await check_url("https://not-yet.test/x", allow_private=False, resolver=stub_resolver({}))


async def test_slow_resolution_is_accepted_after_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await check_url("https://slow.test/x", allow_private=False, resolver=hanging_resolver, timeout_s=0.05)
    assert loop.time() - started < 1.0


async def test_allow_private_skips_every_check() -> None:
    await check_url("http://127.0.0.1/x", allow_private=True, resolver=hanging_resolver)
    check_literal_host("http://10.0.0.1/x", allow_private=True)


async def test_url_without_host_is_refused() -> None:
    with pytest.raises(ForbiddenDestination, match="no host"):
        await check_url("http:///x", allow_private=False, resolver=stub_resolver({}))
    with pytest.raises(ForbiddenDestination, match="not a valid URL"):
        await check_url("http://[::1/x", allow_private=False, resolver=stub_resolver({}))


def test_check_literal_host_refuses_literal_private_addresses() -> None:
    with pytest.raises(DestinationRefused, match=r"destination 10\.0\.0\.1 is a private address, refused"):
        check_literal_host("http://10.0.0.1:8080/x?token=1", allow_private=False)
    with pytest.raises(DestinationRefused, match="loopback"):
        check_literal_host("http://localhost/x", allow_private=False)
    check_literal_host("https://93.184.216.34/x", allow_private=False)
    check_literal_host("https://hooks.example.test/x", allow_private=False)


def test_literal_refusal_names_the_host_and_kind() -> None:
    assert literal_refusal("127.0.0.1") == "destination 127.0.0.1 is a loopback address, refused"
    assert literal_refusal("api.localhost") == "destination api.localhost is a loopback address, refused"
    assert literal_refusal("8.8.8.8") is None
    assert literal_refusal("hooks.example.test") is None


def test_resolved_refusal_shows_at_most_three_addresses() -> None:
    refused = ["10.0.0.1", "10.0.0.2", "127.0.0.1", "10.0.0.4"]
    assert resolved_refusal("internal.test", refused) == (
        "destination internal.test resolves to a private address (10.0.0.1, 10.0.0.2, 127.0.0.1), refused"
    )


@pytest.mark.parametrize(
    "module", ["service.common.destinations", "service.api.subscribers", "service.api.delivery_actions"]
)
def test_the_policy_and_the_routers_do_not_import_the_http_stack(module: str) -> None:
    # aiohttp alone is about a quarter of a second of import time.
    code = f"import sys, {module}; print('aiohttp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
