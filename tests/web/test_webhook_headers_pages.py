"""Custom headers in the console: typed as ``Name: value`` lines, stored ones shown by name only,
kept on an edit that types none, sent by the console's test sends, and what was typed kept
across a test send."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.api import create_webhook
from tests.support.app import RunningApp
from tests.support.receiver import Receiver, running_receiver
from tests.support.secrets import stored_headers
from tests.web.test_pages_http import ORIGIN, csrf_of

TOKEN = "Bearer console-typed-token-9876543210"
TENANT = "tenant-value-never-shown"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def form_fields(page: httpx.Response, url: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "csrf_token": csrf_of(page),
        "name": "Typed headers",
        "url": url,
        "content_type": "application/json",
        "event_type": "project:created",
    }
    return fields | extra


def shows_no_value(page: httpx.Response) -> bool:
    return TOKEN not in page.text and TENANT not in page.text


def typed_headers(page: httpx.Response) -> str:
    """The headers field as the page shows it (what was typed, sent back with the form)."""
    found = re.search(r'<textarea id="headers"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def outside_the_headers_field(page: httpx.Response) -> str:
    return re.sub(r'<textarea id="headers".*?</textarea>', "", page.text, flags=re.S)


async def test_headers_typed_in_the_form_are_stored_and_shown_by_name_only(
    herald: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = herald.client
    form = await client.get("/ui/webhooks/new")
    assert 'name="headers"' in form.text
    typed = f"Authorization: {TOKEN}\n\n  X-Tenant :  {TENANT}  \n"
    created = await client.post(
        "/ui/webhooks/new", data=form_fields(form, receiver.url(), headers=typed), headers=ORIGIN
    )
    assert created.status_code == 201, created.text
    assert shows_no_value(created)
    [hook] = (await client.get("/api/v1/subscribers?type=webhook")).json()["items"]
    assert hook["header_names"] == ["Authorization", "X-Tenant"]
    assert await stored_headers(db, hook["uuid"]) == {"Authorization": TOKEN, "X-Tenant": TENANT}
    page = await client.get(f"/ui/webhooks/{hook['uuid']}")
    assert "Authorization, X-Tenant" in page.text
    assert shows_no_value(page)
    tested = await client.post(
        f"/ui/webhooks/{hook['uuid']}/test", data={"csrf_token": csrf_of(page)}, headers=ORIGIN
    )
    assert 'data-testid="test-result"' in tested.text
    assert shows_no_value(tested)
    [ping] = await receiver.wait_for(1)
    assert ping.headers["authorization"] == TOKEN
    assert ping.headers["x-tenant"] == TENANT


async def test_an_edit_keeps_the_values_unless_a_new_set_is_typed_or_removal_ticked(
    herald: RunningApp, db: asyncpg.Connection
) -> None:
    client = herald.client
    hook = await create_webhook(client, headers={"Authorization": TOKEN, "X-Tenant": TENANT})
    path = f"/ui/webhooks/{hook['uuid']}/edit"
    edit = await client.get(path)
    assert 'data-testid="header-names"' in edit.text
    assert "Authorization" in edit.text
    assert shows_no_value(edit)
    # Sent back as the page gives it: the names as hidden fields, the textarea empty.
    names = ["Authorization", "X-Tenant"]
    saved = await client.post(
        path, data=form_fields(edit, hook["url"], name="Renamed", header_name=names), headers=ORIGIN
    )
    assert saved.status_code == 303
    assert await stored_headers(db, hook["uuid"]) == {"Authorization": TOKEN, "X-Tenant": TENANT}
    replaced = await client.post(
        path, data=form_fields(edit, hook["url"], headers="X-New: 2"), headers=ORIGIN
    )
    assert replaced.status_code == 303
    assert await stored_headers(db, hook["uuid"]) == {"X-New": "2"}
    cleared = await client.post(path, data=form_fields(edit, hook["url"], clear_headers="on"), headers=ORIGIN)
    assert cleared.status_code == 303
    assert await stored_headers(db, hook["uuid"]) == {}
    assert "Remove all headers" not in (await client.get(path)).text


async def test_bad_header_lines_are_named_without_their_values_and_nothing_is_created(
    herald: RunningApp,
) -> None:
    client = herald.client
    form = await client.get("/ui/webhooks/new")
    typed = (
        f"Host: {TENANT}\nthis line has no colon {TENANT}\nX-Bad: a\x01{TENANT}\nX-Ok: {TOKEN}\nx-ok: twice"
    )
    answer = await client.post(
        "/ui/webhooks/new", data=form_fields(form, "http://127.0.0.1:9/hook", headers=typed), headers=ORIGIN
    )
    assert answer.status_code == 422
    assert "line 2 must read Name: value" in answer.text
    assert "x-ok: given twice" in answer.text
    assert "Host: header name is reserved" in answer.text
    assert "X-Bad: header value must be visible ASCII" in answer.text
    assert typed_headers(answer) == typed  # to correct, not to type again
    assert TOKEN not in outside_the_headers_field(answer)  # the problems name lines, never values
    assert TENANT not in outside_the_headers_field(answer)
    assert (await client.get("/api/v1/subscribers?type=webhook")).json()["items"] == []


async def test_the_new_webhook_form_s_test_send_carries_the_typed_headers_and_keeps_them(
    herald: RunningApp, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = herald.client
    form = await client.get("/ui/webhooks/new")
    typed = f"Authorization: {TOKEN}\nX-Tenant: {TENANT}"
    fields = form_fields(form, receiver.url(), headers=typed)
    tested = await client.post("/ui/webhooks/new/test", data=fields, headers=ORIGIN)
    assert tested.status_code == 200
    assert 'data-testid="test-result"' in tested.text
    [ping] = await receiver.wait_for(1)
    assert ping.headers["authorization"] == TOKEN
    assert typed_headers(tested) == typed
    again = fields | {"csrf_token": csrf_of(tested), "headers": typed_headers(tested)}
    created = await client.post("/ui/webhooks/new", data=again, headers=ORIGIN)
    assert created.status_code == 201
    assert shows_no_value(created)  # stored: shown by name only from now on
    [hook] = (await client.get("/api/v1/subscribers?type=webhook")).json()["items"]
    assert await stored_headers(db, hook["uuid"]) == {"Authorization": TOKEN, "X-Tenant": TENANT}
