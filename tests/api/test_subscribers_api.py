"""Webhook subscribers through the HTTP API: create, list, read, change, delete, rotate secrets."""

from __future__ import annotations

import base64
import logging
from typing import Any

import asyncpg
import pytest

from service.api.deps import get_resolver
from tests.support.api import HOOK_URL, create_webhook
from tests.support.app import AppFactory, RunningApp
from tests.support.secrets import stored_secrets

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

SUBSCRIBERS = "/api/v1/subscribers"
GIVEN_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


async def test_create_answers_201_with_a_generated_secret_and_defaults(herald: RunningApp) -> None:
    created = await create_webhook(
        herald.client, subscriptions=[{"event_type": "project:*"}], name="CI alerts"
    )
    assert created["type"] == "webhook"
    assert created["name"] == "CI alerts"
    assert created["url"] == HOOK_URL
    assert created["verify_ssl"] is True
    assert created["content_type"] == "application/json"
    assert created["format"] == "standard"
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    assert created["last_success_at"] is None
    assert created["failing_since"] is None
    assert created["subscriptions"] == [{"event_type": "project:*"}]
    assert created["created_at"] == created["updated_at"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


async def test_a_given_secret_is_kept_and_every_field_is_stored(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    created = await create_webhook(
        herald.client,
        subscriptions=[],
        secret=GIVEN_SECRET,
        verify_ssl=False,
        content_type="application/x-www-form-urlencoded",
        enabled=False,
        url="https://example.com/hooks?token=abc",
    )
    assert created["secret"] == GIVEN_SECRET
    assert created["verify_ssl"] is False
    assert created["content_type"] == "application/x-www-form-urlencoded"
    assert created["enabled"] is False
    assert created["disabled_reason"]
    assert created["url"] == "https://example.com/hooks?token=abc"
    assert (await stored_secrets(db, created["uuid"]))[0] == GIVEN_SECRET


async def test_the_secret_is_shown_only_in_the_create_answer(
    herald: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = herald.client
    created = await create_webhook(client, subscriptions=[], secret=GIVEN_SECRET)
    uuid = created["uuid"]
    answers = [
        await client.get(f"{SUBSCRIBERS}/{uuid}"),
        await client.get(SUBSCRIBERS),
        await client.get(SUBSCRIBERS, params={"type": "webhook"}),
        await client.patch(f"{SUBSCRIBERS}/{uuid}", json={"name": "renamed"}),
        await client.get(f"{SUBSCRIBERS}/subscribed-to/project:created"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert GIVEN_SECRET not in answer.text
        assert "secret" not in answer.text
    rotated = (await client.post(f"{SUBSCRIBERS}/{uuid}/rotate-secret")).json()["secret"]
    patched = "whsec_" + base64.b64encode(b"p" * 40).decode()
    assert (await client.patch(f"{SUBSCRIBERS}/{uuid}", json={"secret": patched})).status_code == 200
    assert rotated not in (await client.get(f"{SUBSCRIBERS}/{uuid}")).text
    for secret in (GIVEN_SECRET, rotated, patched, secret_key_text(GIVEN_SECRET)):
        assert secret not in caplog.text


def secret_key_text(secret: str) -> str:
    return secret.removeprefix("whsec_")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "slack"),
        ("https://discord.com/api/webhooks/123/abc", "discord"),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        ("https://discord.com/channels/123", "standard"),
        ("https://acme.webhook.office.com/webhookb2/x", "teams"),
        ("https://example.com/herald", "standard"),
    ],
)
async def test_format_is_chosen_from_the_url_when_omitted(
    herald: RunningApp, url: str, expected: str
) -> None:
    created = await create_webhook(herald.client, subscriptions=[], url=url)
    assert created["format"] == expected


async def test_format_changes_later_only_when_a_patch_gives_it(herald: RunningApp) -> None:
    created = await create_webhook(herald.client, subscriptions=[], url="https://example.com/herald")
    path = f"{SUBSCRIBERS}/{created['uuid']}"
    moved = await herald.client.patch(path, json={"url": "https://hooks.slack.com/services/T/B/X"})
    assert moved.json()["format"] == "standard"
    changed = await herald.client.patch(path, json={"format": "teams"})
    assert changed.status_code == 200
    assert changed.json()["format"] == "teams"
    explicit = await create_webhook(
        herald.client, subscriptions=[], url="https://hooks.slack.com/services/T/B/X", format="standard"
    )
    assert explicit["format"] == "standard"


async def test_a_chat_format_with_form_encoding_is_refused(herald: RunningApp) -> None:
    client = herald.client
    form = "application/x-www-form-urlencoded"
    body = {"name": "n", "url": "https://example.com/x", "format": "discord", "content_type": form}
    refused = await client.post(f"{SUBSCRIBERS}/webhooks", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "content_type"]
    # The format chosen from the URL counts too.
    slack = {"name": "n", "url": "https://hooks.slack.com/services/T/B/X", "content_type": form}
    assert (await client.post(f"{SUBSCRIBERS}/webhooks", json=slack)).status_code == 422

    form_hook = await create_webhook(client, subscriptions=[], content_type=form)
    to_chat = await client.patch(f"{SUBSCRIBERS}/{form_hook['uuid']}", json={"format": "slack"})
    assert to_chat.status_code == 422
    assert to_chat.json()["detail"][0]["loc"] == ["body", "format"]
    chat_hook = await create_webhook(client, subscriptions=[], format="teams")
    to_form = await client.patch(f"{SUBSCRIBERS}/{chat_hook['uuid']}", json={"content_type": form})
    assert to_form.status_code == 422
    assert to_form.json()["detail"][0]["loc"] == ["body", "content_type"]
    both = await client.patch(
        f"{SUBSCRIBERS}/{chat_hook['uuid']}", json={"content_type": form, "format": "standard"}
    )
    assert both.status_code == 200


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "hook", "url": HOOK_URL, "subscriptions": []}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


PROJECT = "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22"
JOB = "a3c4e5f6-1b2d-4e8f-9a0b-7c6d5e4f3a21"
BAD_SECRETS = [
    "abc",
    "whsec_",
    "whsec_not base64!",
    "whsec_" + base64.b64encode(b"x" * 16).decode(),
    "whsec_" + base64.b64encode(b"x" * 65).decode(),
    "WHSEC_" + base64.b64encode(b"x" * 32).decode(),
]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (_body(url="ftp://example.com/x"), ["body", "url"]),
        (_body(url="example.com/x"), ["body", "url"]),
        (_body(url="http://"), ["body", "url"]),
        (_body(url="http://exa mple.com/"), ["body", "url"]),
        (_body(url="http://example.com:99999/"), ["body", "url"]),
        (_body(url=""), ["body", "url"]),
        (_body(name="x" * 101), ["body", "name"]),
        (_body(name=""), ["body", "name"]),
        (_body(name="   "), ["body", "name"]),
        ({"url": HOOK_URL}, ["body", "name"]),
        ({"name": "n"}, ["body", "url"]),
        (_body(content_type="text/plain"), ["body", "content_type"]),
        (_body(format="email"), ["body", "format"]),
        (_body(surprise=1), ["body", "surprise"]),
        (_body(subscriptions=[{"event_type": "project:nope"}]), ["body", "subscriptions", 0, "event_type"]),
        (_body(subscriptions=[{"event_type": "PROJECT:*"}]), ["body", "subscriptions", 0, "event_type"]),
        (_body(subscriptions=[{"event_type": "ping"}]), ["body", "subscriptions", 0, "event_type"]),
        (_body(subscriptions=[{"event_type": ""}]), ["body", "subscriptions", 0, "event_type"]),
        (_body(subscriptions=[{"event_type": "*" * 5000}]), ["body", "subscriptions", 0, "event_type"]),
        (_body(subscriptions=[{}]), ["body", "subscriptions", 0, "event_type"]),
        # A run of stars must not send the catalog's matcher into exponential backtracking.
        (_body(subscriptions=[{"event_type": "*" * 190 + "x"}]), ["body", "subscriptions", 0, "event_type"]),
        (
            _body(subscriptions=[{"event_type": "project:_reated"}]),
            ["body", "subscriptions", 0, "event_type"],
        ),
        (_body(subscriptions=[{"event_type": "project:%"}]), ["body", "subscriptions", 0, "event_type"]),
        (
            _body(subscriptions=[{"event_type": "project:created"}, {"event_type": "x", "extra": 1}]),
            ["body", "subscriptions", 1, "extra"],
        ),
        (
            _body(subscriptions=[{"event_type": "project:one-off-job:*", "job_uuid": JOB}]),
            ["body", "subscriptions", 0, "job_uuid"],
        ),
        (
            _body(subscriptions=[{"event_type": "jupyter:image-build:failed", "project_uuid": PROJECT}]),
            ["body", "subscriptions", 0, "project_uuid"],
        ),
        (
            _body(subscriptions=[{"event_type": "*", "project_uuid": PROJECT}]),
            ["body", "subscriptions", 0, "project_uuid"],
        ),
        (
            _body(
                subscriptions=[{"event_type": "project:created", "project_uuid": PROJECT, "job_uuid": JOB}]
            ),
            ["body", "subscriptions", 0, "job_uuid"],
        ),
        (
            _body(subscriptions=[{"event_type": "project:*", "project_uuid": PROJECT, "job_uuid": JOB}]),
            ["body", "subscriptions", 0, "job_uuid"],
        ),
        (
            _body(subscriptions=[{"event_type": "project:created", "project_uuid": "not-a-uuid"}]),
            ["body", "subscriptions", 0, "project_uuid"],
        ),
        (_body(subscriptions={"event_type": "*"}), ["body", "subscriptions"]),
        (_body(verify_ssl="maybe"), ["body", "verify_ssl"]),
    ],
)
async def test_create_validation_errors_are_422_naming_the_field(
    herald: RunningApp, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await herald.client.post(f"{SUBSCRIBERS}/webhooks", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert loc in [error["loc"] for error in detail]
    assert all(error["msg"] for error in detail)
    assert all("input" not in error for error in detail)
    assert (await herald.client.get(SUBSCRIBERS, params={"type": "webhook"})).json()["items"] == []


async def test_every_bad_item_of_a_subscription_list_is_named(herald: RunningApp) -> None:
    subscriptions = [
        {"event_type": "project:created"},
        {"event_type": "nothing:*"},
        {"event_type": "*:failed", "job_uuid": JOB},
    ]
    response = await herald.client.post(f"{SUBSCRIBERS}/webhooks", json=_body(subscriptions=subscriptions))
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert locs == [["body", "subscriptions", 1, "event_type"], ["body", "subscriptions", 2, "job_uuid"]]


@pytest.mark.parametrize("secret", BAD_SECRETS)
async def test_a_malformed_secret_is_refused_without_being_echoed(herald: RunningApp, secret: str) -> None:
    for response in (
        await herald.client.post(f"{SUBSCRIBERS}/webhooks", json=_body(secret=secret)),
        await herald.client.patch(
            f"{SUBSCRIBERS}/{(await create_webhook(herald.client, subscriptions=[]))['uuid']}",
            json={"secret": secret},
        ),
    ):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "secret"]
        if len(secret) > 6:
            assert secret not in response.text
            assert secret_key_text(secret) not in response.text


async def test_a_missing_field_error_does_not_echo_the_body(herald: RunningApp) -> None:
    response = await herald.client.post(
        f"{SUBSCRIBERS}/webhooks", json={"url": HOOK_URL, "secret": GIVEN_SECRET}
    )
    assert response.status_code == 422
    assert secret_key_text(GIVEN_SECRET) not in response.text


async def test_malformed_json_is_a_422(herald: RunningApp) -> None:
    response = await herald.client.post(
        f"{SUBSCRIBERS}/webhooks", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_duplicate_subscriptions_in_one_request_are_merged(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    subscriptions = [
        {"event_type": "project:*"},
        {"event_type": "project:created", "project_uuid": PROJECT},
        {"event_type": "project:*"},
        {"event_type": "project:created", "project_uuid": PROJECT.upper()},
        {"event_type": "project:created"},
    ]
    created = await create_webhook(herald.client, subscriptions=subscriptions)
    assert created["subscriptions"] == [
        {"event_type": "project:*"},
        {"event_type": "project:created"},
        {"event_type": "project:created", "project_uuid": PROJECT},
    ]
    assert (
        await db.fetchval("SELECT count(*) FROM subscriptions WHERE subscriber_uuid = $1", created["uuid"])
        == 3
    )


async def test_patterns_are_stored_as_written(herald: RunningApp, db: asyncpg.Connection) -> None:
    created = await create_webhook(herald.client, subscriptions=[{"event_type": "project:**:failed"}])
    assert created["subscriptions"] == [{"event_type": "project:**:failed"}]
    row = await db.fetchrow(
        "SELECT kind, like_pattern, has_wildcard FROM subscriptions WHERE subscriber_uuid = $1",
        created["uuid"],
    )
    assert row is not None
    assert tuple(row) == ("global", "project:%%:failed", True)


async def test_subscription_kinds_follow_the_scope(herald: RunningApp, db: asyncpg.Connection) -> None:
    subscriptions = [
        {"event_type": "*"},
        {"event_type": "project:*", "project_uuid": PROJECT},
        {"event_type": "project:cron-job:*", "project_uuid": PROJECT, "job_uuid": JOB},
    ]
    created = await create_webhook(herald.client, subscriptions=subscriptions)
    rows = await db.fetch(
        "SELECT event_type, kind FROM subscriptions WHERE subscriber_uuid = $1 ORDER BY event_type",
        created["uuid"],
    )
    assert [tuple(row) for row in rows] == [
        ("*", "global"),
        ("project:*", "project"),
        ("project:cron-job:*", "job"),
    ]


async def test_private_destinations_are_refused_unless_allowed(app_factory: AppFactory) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        addresses = {
            "internal.test": ["10.1.2.3"],
            "public.test": ["93.184.216.34"],
            "mixed.test": ["93.184.216.34", "127.0.0.1"],
        }
        if host not in addresses:
            raise OSError("does not resolve")
        return addresses[host]

    async with app_factory(allow_private_destinations=False) as running:
        running.app.dependency_overrides[get_resolver] = lambda: resolve
        client = running.client
        for url in (
            "http://10.0.0.1/hook",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest",
            "http://internal.test/hook",
            "http://mixed.test/hook",
        ):
            response = await client.post(f"{SUBSCRIBERS}/webhooks", json=_body(url=url))
            assert response.status_code == 422, url
            [error] = response.json()["detail"]
            assert error["loc"] == ["body", "url"]
            # The answer says how to allow it (tests on one machine need to).
            assert "HERALD_ALLOW_PRIVATE_DESTINATIONS=true" in error["msg"], error["msg"]
        for url in ("https://public.test/hook", "https://not-resolving.test/hook", "http://93.184.216.34/"):
            response = await client.post(f"{SUBSCRIBERS}/webhooks", json=_body(url=url))
            assert response.status_code == 201, url
        uuid = response.json()["uuid"]
        moved = await client.patch(f"{SUBSCRIBERS}/{uuid}", json={"url": "http://10.0.0.1/x"})
        assert moved.status_code == 422
        assert moved.json()["detail"][0]["msg"] == (
            "destination 10.0.0.1 is a private address, refused; "
            "set HERALD_ALLOW_PRIVATE_DESTINATIONS=true to allow private destinations"
        )
        assert (await client.get(f"{SUBSCRIBERS}/{uuid}")).json()["url"] == "http://93.184.216.34/"
