"""Settings: every one documented in .env.example, and those parsed beyond their type (the
portal's frame ancestors, the API keys)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings, parse_api_keys, short_api_keys


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
