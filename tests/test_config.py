"""Settings: every one documented in .env.example, and those parsed beyond their type (the
portal's frame ancestors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings


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
