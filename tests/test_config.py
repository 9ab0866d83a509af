"""Settings: every one documented in .env.example, and those parsed beyond their type (the
portal's frame ancestors, the API keys, the trusted proxies)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings, parse_api_keys, parse_trusted_proxies, short_api_keys


def _ancestors(value: str) -> str:
    return Settings(_env_file=None, portal_frame_ancestors=value).portal_frame_ancestors


def test_frame_ancestors_are_normalized_sources() -> None:
    assert Settings(_env_file=None).portal_frame_ancestors == "'none'"
    assert _ancestors("none") == "'none'"  # a .env file's quoting drops the quotes
    assert _ancestors("  https://a.example   self ") == "https://a.example 'self'"


@pytest.mark.parametrize(
    "value",
    ["", "https://a.example; script-src *", "https://a.example,https://b", "a\nb", "'none' https://a"],
)
def test_frame_ancestors_that_would_break_the_header_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="HERALD_PORTAL_FRAME_ANCESTORS"):
        _ancestors(value)


def test_every_setting_is_listed_in_the_env_example() -> None:
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?HERALD_([A-Z0-9_]+)=", example, re.M))
    assert {name.upper() for name in Settings.model_fields} - listed == set()


@pytest.mark.parametrize(
    ("keys", "entries"),
    [
        ("admin:shared-key-0123456789, ingest:shared-key-0123456789", "#1 (admin) and #2 (ingest)"),
        ("ingest:other-key-0123456789,admin:a,admin:a", "#2 (admin) and #3 (admin)"),
    ],
)
def test_a_key_given_twice_is_refused_naming_the_entries_never_the_key(keys: str, entries: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, api_keys=keys)
    [error] = refused.value.errors()
    assert f"HERALD_API_KEYS entries {entries} hold the same key" in error["msg"]
    assert "shared-key" not in error["msg"]


def test_short_keys_are_found_by_position() -> None:
    keys = parse_api_keys("admin:0123456789abcdef, ingest:0123456789abcde, admin:x")
    assert short_api_keys(keys) == [2, 3]


def test_trusted_proxies_are_addresses_networks_or_everyone() -> None:
    assert Settings(_env_file=None).trusted_proxies.trust("127.0.0.1")
    trusted = parse_trusted_proxies(" 10.0.0.0/8 , 2001:db8::1 ,192.0.2.7")
    assert trusted.trust("10.200.1.1")
    assert trusted.trust("::ffff:10.0.0.1")  # an IPv4 peer seen on an IPv6 socket
    assert trusted.trust("2001:db8::1")
    assert not trusted.trust("192.0.2.8")
    assert not trusted.trust(None)
    assert not trusted.trust("not-an-address")
    everyone = parse_trusted_proxies("*")
    assert everyone.trust("203.0.113.1")
    assert everyone.trust(None)
    assert not parse_trusted_proxies("").trust("127.0.0.1")


def test_a_trusted_proxy_that_is_no_address_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"HERALD_FORWARDED_ALLOW_IPS entry #2 \('proxy\.internal'\)"):
        Settings(_env_file=None, forwarded_allow_ips="127.0.0.1, proxy.internal")
