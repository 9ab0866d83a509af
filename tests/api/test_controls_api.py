"""Delivery controls through the HTTP API: rate_limit_per_minute and ordered on create, PATCH, read."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import create_webhook
from tests.support.app import RunningApp

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"


@pytest.mark.parametrize(
    ("fmt", "expected"), [("standard", None), ("slack", 60), ("teams", 60), ("discord", 30)]
)
async def test_the_rate_limit_left_out_at_creation_is_the_formats_default(
    herald: RunningApp, fmt: str, expected: int | None
) -> None:
    created = await create_webhook(herald.client, subscriptions=[], format=fmt)
    assert created["rate_limit_per_minute"] == expected
    assert created["ordered"] is False
    assert created["paused_until"] is None
    read = (await herald.client.get(f"{SUBSCRIBERS}/{created['uuid']}")).json()
    assert read["rate_limit_per_minute"] == expected


async def test_an_explicit_null_at_creation_means_no_limit_even_for_a_chat_format(herald: RunningApp) -> None:
    created = await create_webhook(
        herald.client, subscriptions=[], format="slack", rate_limit_per_minute=None
    )
    assert created["rate_limit_per_minute"] is None
    given = await create_webhook(
        herald.client, subscriptions=[], format="discord", rate_limit_per_minute=600, ordered=True
    )
    assert (given["rate_limit_per_minute"], given["ordered"]) == (600, True)


async def test_a_patch_changes_the_controls_only_when_given_and_null_removes_the_limit(
    herald: RunningApp,
) -> None:
    client = herald.client
    hook = await create_webhook(client, subscriptions=[], format="teams")
    url = f"{SUBSCRIBERS}/{hook['uuid']}"

    changed = await client.patch(url, json={"rate_limit_per_minute": 120, "ordered": True})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rate_limit_per_minute"], changed.json()["ordered"]) == (120, True)
    # Another field alone keeps them; a format change does not bring its default back.
    renamed = (await client.patch(url, json={"name": "renamed", "format": "discord"})).json()
    assert (renamed["rate_limit_per_minute"], renamed["ordered"]) == (120, True)
    cleared = (await client.patch(url, json={"rate_limit_per_minute": None})).json()
    assert cleared["rate_limit_per_minute"] is None
    assert (await client.get(url)).json()["rate_limit_per_minute"] is None
    unordered = (await client.patch(url, json={"ordered": False})).json()
    assert unordered["ordered"] is False


BAD_VALUES: list[tuple[str, Any]] = [
    ("rate_limit_per_minute", 0),
    ("rate_limit_per_minute", 60001),
    ("rate_limit_per_minute", -5),
    ("rate_limit_per_minute", "x"),
    ("rate_limit_per_minute", "60"),
    ("rate_limit_per_minute", True),
    ("rate_limit_per_minute", 1.5),
    ("ordered", "x"),
    ("ordered", [True]),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
async def test_bad_control_values_are_422_naming_the_field(
    herald: RunningApp, field: str, value: Any
) -> None:
    client = herald.client
    body = {"name": "n", "url": "http://127.0.0.1:9/hook", field: value}
    created = await client.post(f"{SUBSCRIBERS}/webhooks", json=body)
    assert created.status_code == 422, created.text
    assert created.json()["detail"][0]["loc"] == ["body", field]

    hook = await create_webhook(client, subscriptions=[])
    patched = await client.patch(f"{SUBSCRIBERS}/{hook['uuid']}", json={field: value})
    assert patched.status_code == 422, patched.text
    assert patched.json()["detail"][0]["loc"] == ["body", field]


async def test_ordered_cannot_be_patched_to_null_but_the_limits_bounds_are_accepted(
    herald: RunningApp,
) -> None:
    client = herald.client
    hook = await create_webhook(client, subscriptions=[])
    url = f"{SUBSCRIBERS}/{hook['uuid']}"
    refused = await client.patch(url, json={"ordered": None})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "ordered"]
    for bound in (1, 60000):
        accepted = await client.patch(url, json={"rate_limit_per_minute": bound})
        assert accepted.json()["rate_limit_per_minute"] == bound
