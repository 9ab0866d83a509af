"""The clients' own manners: what they send, how they show, what they refuse up front."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from herald_client import AsyncHerald, Herald, HeraldError, Webhook, __version__

WEBHOOK = {
    "uuid": "5b0f3a9e-8d0c-4c86-9a53-2f1c8e1d7a41",
    "type": "webhook",
    "name": "ops",
    "url": "https://ops.example.com/hook",
    "verify_ssl": True,
    "content_type": "application/json",
    "format": "standard",
    "enabled": True,
    "disabled_reason": None,
    "subscriptions": [{"event_type": "project:*", "project_uuid": None, "job_uuid": None}],
    "created_at": "2026-01-01T00:00:00.123456Z",
    "updated_at": "2026-01-01T00:00:00+00:00",
    "secret": "whsec_c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0",
}


def test_repr_shows_neither_the_api_key_nor_the_secret() -> None:
    client = Herald("http://127.0.0.1:8000/", "s3cret-key")
    assert repr(client) == "Herald('http://127.0.0.1:8000', api_key='***')"
    assert "s3cret" not in repr(AsyncHerald("http://127.0.0.1:8000", "s3cret-key"))
    hook = Webhook.from_json(WEBHOOK)
    assert hook.secret == WEBHOOK["secret"]
    assert "whsec_" not in repr(hook)
    assert hook.created_at == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


def test_requests_carry_the_key_a_user_agent_and_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=WEBHOOK)

    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        Herald("http://127.0.0.1:8000/base/", "key", http_client=http) as client,
    ):
        project = uuid.uuid4()
        client.create_webhook(
            "ops",
            "https://ops.example.com/hook",
            subscriptions=["project:*", {"event_type": "project:created", "project_uuid": project}],
            format="standard",
            rate_limit_per_minute=None,
        )
    [request] = seen
    assert request.url == "http://127.0.0.1:8000/base/api/v1/subscribers/webhooks"
    assert request.headers["authorization"] == "Bearer key"
    assert request.headers["user-agent"].startswith(f"herald-client/{__version__}")
    assert request.headers["content-type"] == "application/json"
    # None options are left to Herald's defaults; UUIDs become strings.
    assert json.loads(request.content) == {
        "name": "ops",
        "url": "https://ops.example.com/hook",
        "subscriptions": [
            {"event_type": "project:*"},
            {"event_type": "project:created", "project_uuid": str(project)},
        ],
        "format": "standard",
    }


def test_a_client_leaves_a_given_http_client_open_and_closes_its_own() -> None:
    http = httpx.Client()
    with Herald("http://127.0.0.1:8000", http_client=http):
        pass
    assert not http.is_closed
    http.close()
    client = Herald("http://127.0.0.1:8000")
    client.close()
    client.close()  # twice is fine
    assert client._http.is_closed


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http://"])
def test_a_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        Herald(url)


def test_wrong_arguments_are_refused_before_any_request() -> None:
    client = Herald("http://127.0.0.1:8000")
    with pytest.raises(ValueError, match="page_size"):
        client.deliveries(page_size=501)
    with pytest.raises(ValueError, match="max_retries"):
        Herald("http://127.0.0.1:8000", max_retries=-1)
    with pytest.raises(TypeError, match="mapping"):
        client.send_event(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="object"):
        client.send_event({"type": "project:created", "project": object()})
    with pytest.raises(ValueError, match="JSON"):
        client.send_event({"type": "project:created", "number": float("nan")})


def test_an_answer_that_is_not_herald_s_is_a_herald_error() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, text="<html>a captive portal</html>"))
    with (
        httpx.Client(transport=transport) as http,
        Herald("http://127.0.0.1:8000", http_client=http) as client,
        pytest.raises(HeraldError, match="unexpected answer") as caught,
    ):
        client.event_types()
    assert caught.value.status_code == 200


def test_a_server_repeating_its_cursor_does_not_loop_forever() -> None:
    page = {"items": [WEBHOOK], "next_cursor": "same"}
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=page))
    with (
        httpx.Client(transport=transport) as http,
        Herald("http://127.0.0.1:8000", http_client=http) as client,
        pytest.raises(HeraldError, match="same cursor"),
    ):
        list(client.webhooks())
