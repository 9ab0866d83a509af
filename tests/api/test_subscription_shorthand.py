"""A subscription given as its pattern alone: ``"subscriptions": ["*"]`` is
``[{"event_type": "*"}]``, at create, PATCH and the test send, and documented as such."""

from __future__ import annotations

from typing import Any

import pytest

from service.main import create_app
from tests.support.api import HOOK_URL
from tests.support.app import RunningApp, make_settings

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"
PROJECT = "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22"


async def create(herald: RunningApp, subscriptions: list[Any]) -> dict[str, Any]:
    body = {"name": "shorthand", "url": HOOK_URL, "subscriptions": subscriptions}
    response = await herald.client.post(f"{SUBSCRIBERS}/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_string_is_an_unscoped_subscription_to_that_pattern(herald: RunningApp) -> None:
    assert (await create(herald, ["*"]))["subscriptions"] == [{"event_type": "*"}]
    mixed = await create(herald, ["project:created", {"event_type": "project:*", "project_uuid": PROJECT}])
    assert sorted(mixed["subscriptions"], key=str) == [
        {"event_type": "project:*", "project_uuid": PROJECT},
        {"event_type": "project:created"},
    ]
    delivered = await herald.client.get(f"{SUBSCRIBERS}/subscribed-to/project:created")
    assert {hook["uuid"] for hook in delivered.json()["items"]} >= {mixed["uuid"]}


async def test_a_patch_takes_strings_too_and_duplicates_merge(herald: RunningApp) -> None:
    hook = await create(herald, [])
    path = f"{SUBSCRIBERS}/{hook['uuid']}"
    twice = ["*:failed", {"event_type": "*:failed"}]
    patched = await herald.client.patch(path, json={"subscriptions": twice})
    assert patched.status_code == 200, patched.text
    assert patched.json()["subscriptions"] == [{"event_type": "*:failed"}]


async def test_a_bad_string_is_named_like_a_bad_event_type(herald: RunningApp) -> None:
    # The test send validates its body as a create does; a 422 sends nothing.
    bad = ["project:created", "", "a\x00b", 7]
    for path in (f"{SUBSCRIBERS}/webhooks", f"{SUBSCRIBERS}/webhooks/test"):
        response = await herald.client.post(path, json={"name": "bad", "url": HOOK_URL, "subscriptions": bad})
        assert response.status_code == 422, response.text
        locs = [error["loc"][:4] for error in response.json()["detail"]]
        assert ["body", "subscriptions", 1, "event_type"] in locs
        assert ["body", "subscriptions", 2, "event_type"] in locs
        assert ["body", "subscriptions", 3] in [loc[:3] for loc in locs]
    body = {"name": "bad", "url": HOOK_URL, "subscriptions": ["project:created", "nothing:*"]}
    unknown = await herald.client.post(f"{SUBSCRIBERS}/webhooks", json=body)
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "subscriptions", 1, "event_type"]


def test_the_schema_shows_both_forms() -> None:
    schema = create_app(make_settings("postgresql://unused/unused")).openapi()
    components = schema["components"]["schemas"]
    for model in ("WebhookCreate", "WebhookUpdate"):
        field = components[model]["properties"]["subscriptions"]
        array = next(option for option in field.get("anyOf", [field]) if option.get("type") == "array")
        forms = array["items"]["anyOf"]
        assert forms[0] == {"$ref": "#/components/schemas/SubscriptionIn"}
        assert forms[1]["type"] == "string"
        assert (forms[1]["minLength"], forms[1]["maxLength"]) == (1, 200)
