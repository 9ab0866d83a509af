"""**Send test** on the new-webhook form, in-process: the secret it signs with (typed, or made and
kept in the form), the receiver's answer shown as text, and the API's ``response_body``."""

from __future__ import annotations

import html
import re

import httpx
from standardwebhooks import Webhook

from service.common.secrets import generate_secret
from tests.support.app import RunningApp
from tests.support.receiver import Receiver, Reply
from tests.web.test_pages_http import ORIGIN, csrf_of


def form(page: httpx.Response, url: str, **extra: str) -> dict[str, str]:
    fields = {
        "csrf_token": csrf_of(page),
        "name": "Tested first",
        "url": url,
        "content_type": "application/json",
        "event_type": "project:created",
    }
    return fields | extra


def secret_field(page: httpx.Response) -> str:
    found = re.search(r'<input id="secret" name="secret" value="([^"]*)"', page.text)
    assert found is not None
    return html.unescape(found.group(1))


async def test_a_test_without_a_secret_signs_with_one_the_form_then_keeps(
    herald: RunningApp, receiver: Receiver
) -> None:
    client = herald.client
    new = await client.get("/ui/webhooks/new")
    assert secret_field(new) == ""
    tested = await client.post("/ui/webhooks/new/test", data=form(new, receiver.url("/made")), headers=ORIGIN)
    assert tested.status_code == 200
    made = secret_field(tested)
    assert made.startswith("whsec_")
    assert 'data-testid="secret-made"' in tested.text
    [ping] = await receiver.wait_for(1, "/made")
    assert Webhook(made).verify(ping.body, ping.headers)["event"]["type"] == "ping"
    created = await client.post(
        "/ui/webhooks/new", data=form(tested, receiver.url("/made"), secret=made), headers=ORIGIN
    )
    assert created.status_code == 201
    assert f'data-testid="secret" id="secret-value" class="secret">{made}<' in created.text


async def test_a_typed_secret_signs_the_test_and_a_malformed_one_is_refused_unsent(
    herald: RunningApp, receiver: Receiver
) -> None:
    client = herald.client
    new = await client.get("/ui/webhooks/new")
    typed = generate_secret()
    fields = form(new, receiver.url("/typed"), secret=typed)
    tested = await client.post("/ui/webhooks/new/test", data=fields, headers=ORIGIN)
    assert tested.status_code == 200
    assert secret_field(tested) == typed
    assert 'data-testid="secret-made"' not in tested.text
    [ping] = await receiver.wait_for(1, "/typed")
    Webhook(typed).verify(ping.body, ping.headers)
    bad = form(new, receiver.url("/typed"), secret="whsec_not base64!")
    refused = await client.post("/ui/webhooks/new/test", data=bad, headers=ORIGIN)
    assert refused.status_code == 422
    assert '<p class="field-error" id="secret-error">secret must be' in refused.text
    assert len(receiver.on("/typed")) == 1


async def test_the_receivers_answer_is_shown_as_text_and_given_by_the_api(
    herald: RunningApp, receiver: Receiver
) -> None:
    receiver.reply("/refusing", then=Reply(status=400, body=b"<i>bad signature</i>"))
    client = herald.client
    new = await client.get("/ui/webhooks/new")
    tested = await client.post(
        "/ui/webhooks/new/test", data=form(new, receiver.url("/refusing")), headers=ORIGIN
    )
    assert tested.status_code == 200
    assert "The receiver answered HTTP 400 in" in tested.text
    assert "(HTTP 400)" not in tested.text
    assert (
        '<pre class="excerpt" data-testid="test-response">&lt;i&gt;bad signature&lt;/i&gt;</pre>'
        in tested.text
    )
    body = {"name": "api", "url": receiver.url("/refusing")}
    answer = (await client.post("/api/v1/subscribers/webhooks/test", json=body)).json()
    assert answer["error"] == "HTTP 400"
    assert answer["response_body"] == "<i>bad signature</i>"
    body["url"] = "http://127.0.0.1:9/nobody"
    answer = (await client.post("/api/v1/subscribers/webhooks/test", json=body)).json()
    assert (answer["error"], answer["response_body"]) == ("connection refused", None)
