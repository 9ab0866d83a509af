"""A webhook's custom ``headers`` through the API: the rules (a 422 naming the header), the set
replaced by PATCH, and ``header_names`` the only trace of them in any answer."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from service.schemas.webhook_headers import FORBIDDEN_HEADER_NAMES
from tests.support.api import HOOK_URL, create_webhook
from tests.support.app import RunningApp
from tests.support.secrets import stored_headers

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

WEBHOOKS = "/api/v1/subscribers/webhooks"
SUBSCRIBERS = "/api/v1/subscribers"
TOKEN = "Bearer s3cr3t-t0ken-for-the-receiver"
BASIC = "Basic dXNlcjpodW50ZXIy"


def body_with(headers: Any) -> dict[str, Any]:
    return {"name": "with headers", "url": HOOK_URL, "headers": headers}


async def refused(herald: RunningApp, headers: Any) -> list[dict[str, Any]]:
    answer = await herald.client.post(WEBHOOKS, json=body_with(headers))
    assert answer.status_code == 422, answer.text
    errors: list[dict[str, Any]] = answer.json()["detail"]
    return errors


FORBIDDEN = [
    *sorted(FORBIDDEN_HEADER_NAMES),
    "Host",
    "CONTENT-TYPE",
    "User-Agent",
    "webhook-id",
    "Webhook-Signature",
    "webhook-anything",
    "herald-attempt",
    "Herald-Custom",
]


@pytest.mark.parametrize("name", FORBIDDEN)
async def test_a_forbidden_name_is_refused_naming_the_header(herald: RunningApp, name: str) -> None:
    [error] = await refused(herald, {"X-Fine": "yes", name: "value"})
    assert error["loc"] == ["body", "headers", name]
    assert "reserved" in error["msg"]


@pytest.mark.parametrize("name", ["X Token", "X:Token", "", "Tök", "a(b)", "x/y", 'say"hi"', "a\tb"])
async def test_a_name_that_is_not_an_http_token_is_refused(herald: RunningApp, name: str) -> None:
    [error] = await refused(herald, {name: "value"})
    assert error["loc"] == ["body", "headers", name]
    assert "HTTP token" in error["msg"]


async def test_at_most_20_headers(herald: RunningApp) -> None:
    twenty = {f"X-H{i}": str(i) for i in range(20)}
    assert len((await create_webhook(herald.client, headers=twenty))["header_names"]) == 20
    [error] = await refused(herald, twenty | {"X-H20": "20"})
    assert error["loc"] == ["body", "headers"]
    assert "20" in error["msg"]


async def test_a_value_holds_at_most_2_kib(herald: RunningApp) -> None:
    assert (await create_webhook(herald.client, headers={"X-Big": "v" * 2048}))["header_names"] == ["X-Big"]
    [error] = await refused(herald, {"X-Big": "v" * 2049})
    assert error["loc"] == ["body", "headers", "X-Big"]
    assert "2048 bytes" in error["msg"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\r\nX-Injected: 1", "CR or LF"),
        ("a\nb", "CR or LF"),
        ("a\rb", "CR or LF"),
        ("a\x00b", "control characters"),
        ("a\x7fb", "control characters"),
        ("a\x1bb", "control characters"),
        ("café", "ASCII"),
    ],
)
async def test_a_value_with_cr_lf_or_control_characters_is_refused(
    herald: RunningApp, value: str, words: str
) -> None:
    answer = await herald.client.post(WEBHOOKS, json=body_with({"X-Value": value}))
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "headers", "X-Value"]
    assert words in error["msg"]
    assert value not in answer.text


async def test_tabs_and_spaces_and_an_empty_value_are_fine(herald: RunningApp) -> None:
    hook = await create_webhook(herald.client, headers={"X-Tab": "a\tb c", "X-Empty": ""})
    assert hook["header_names"] == ["X-Empty", "X-Tab"]


async def test_names_differing_only_in_case_are_refused(herald: RunningApp) -> None:
    [error] = await refused(herald, {"X-Token": "a", "x-token": "b"})
    assert error["loc"] == ["body", "headers", "x-token"]


async def test_every_problem_is_named_at_once_without_any_value(herald: RunningApp) -> None:
    answer = await herald.client.post(
        WEBHOOKS, json=body_with({"Host": TOKEN, "X-Ok": TOKEN, "X-Bad": TOKEN + "\n", "bad name": TOKEN})
    )
    assert answer.status_code == 422
    assert [e["loc"][-1] for e in answer.json()["detail"]] == ["Host", "X-Bad", "bad name"]
    assert TOKEN not in answer.text


async def test_headers_must_be_an_object_of_strings(herald: RunningApp) -> None:
    [error] = await refused(herald, {"X-Number": 5})
    assert error["loc"] == ["body", "headers", "X-Number"]
    [error] = await refused(herald, ["X-List: 1"])
    assert error["loc"] == ["body", "headers"]


async def test_the_webhook_shows_sorted_header_names_and_never_a_value(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    headers = {"X-Zeta": BASIC, "Authorization": TOKEN, "x-api-key": "key-" + TOKEN}
    created = await herald.client.post(WEBHOOKS, json=body_with(headers))
    assert created.status_code == 201
    hook = created.json()
    assert hook["header_names"] == ["Authorization", "X-Zeta", "x-api-key"]
    assert "headers" not in hook
    uuid = hook["uuid"]
    answers = [
        created,
        await herald.client.get(f"{SUBSCRIBERS}/{uuid}"),
        await herald.client.get(SUBSCRIBERS),
        await herald.client.get(f"{SUBSCRIBERS}/subscribed-to/project:created"),
        await herald.client.patch(f"{SUBSCRIBERS}/{uuid}", json={"name": "renamed"}),
        await herald.client.patch(f"{SUBSCRIBERS}/{uuid}", json={"headers": {"Host": TOKEN}}),
        await herald.client.get("/openapi.json"),
    ]
    for answer in answers:
        for value in headers.values():
            assert value not in answer.text, answer.request.url
    assert (await herald.client.get(f"{SUBSCRIBERS}/{uuid}")).json()["header_names"] == hook["header_names"]
    assert await stored_headers(db, uuid) == headers
    analytics = (await herald.client.get(f"{SUBSCRIBERS}?type=analytics")).json()["items"]
    assert [item["header_names"] for item in analytics] == [[]]


async def test_patch_replaces_the_set_and_an_empty_object_clears_it(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    hook = await create_webhook(herald.client, headers={"Authorization": TOKEN, "X-Old": "1"})
    path = f"{SUBSCRIBERS}/{hook['uuid']}"
    kept = await herald.client.patch(path, json={"name": "other name"})
    assert kept.json()["header_names"] == ["Authorization", "X-Old"]
    replaced = await herald.client.patch(path, json={"headers": {"X-New": "2"}})
    assert replaced.status_code == 200
    assert replaced.json()["header_names"] == ["X-New"]
    assert await stored_headers(db, hook["uuid"]) == {"X-New": "2"}
    refused_patch = await herald.client.patch(path, json={"headers": {"Connection": "close"}})
    assert refused_patch.status_code == 422
    assert refused_patch.json()["detail"][0]["loc"] == ["body", "headers", "Connection"]
    assert await stored_headers(db, hook["uuid"]) == {"X-New": "2"}
    cleared = await herald.client.patch(path, json={"headers": {}})
    assert cleared.json()["header_names"] == []
    row = await db.fetchrow(
        "SELECT headers, header_names FROM subscribers WHERE uuid = $1::uuid", hook["uuid"]
    )
    assert row is not None
    assert (row["headers"], row["header_names"]) == (None, [])


async def test_patch_headers_null_is_refused(herald: RunningApp) -> None:
    hook = await create_webhook(herald.client, headers={"Authorization": TOKEN})
    answer = await herald.client.patch(f"{SUBSCRIBERS}/{hook['uuid']}", json={"headers": None})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "headers"]
    kept = await herald.client.get(f"{SUBSCRIBERS}/{hook['uuid']}")
    assert kept.json()["header_names"] == ["Authorization"]


async def test_the_stored_headers_are_one_token_bound_to_the_webhook(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    hook = await create_webhook(herald.client, headers={"Authorization": TOKEN})
    stored = await db.fetchval("SELECT headers FROM subscribers WHERE uuid = $1::uuid", hook["uuid"])
    assert stored.startswith("hsb1.")
    assert TOKEN not in stored
    other = await create_webhook(herald.client)
    # Moved to another row, the token no longer opens: the test send refuses rather than sends.
    await db.execute("UPDATE subscribers SET headers = $1 WHERE uuid = $2::uuid", stored, other["uuid"])
    answer = await herald.client.post(f"{SUBSCRIBERS}/{other['uuid']}/test")
    assert answer.status_code == 409
    assert "HERALD_SECRETS_KEYS" in answer.json()["detail"]
    assert stored not in answer.text
