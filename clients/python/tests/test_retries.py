"""Retries, backoff and ``Retry-After``, with scripted answers (``httpx.MockTransport``).

Everything else is tested against a real Herald; here the point is the exact sequence of
answers and waits, which a real server cannot be made to produce on demand.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import httpx
import pytest
from herald_client import (
    AsyncHerald,
    AuthError,
    ConflictError,
    Herald,
    HeraldError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from herald_client._retry import parse_retry_after
from herald_process import free_port

EVENT = {"type": "project:created", "project": {"uuid": "8c2f1a36-4a53-4b1e-9a55-0b7f7f1f2d11", "name": "x"}}
BASE_URL = "http://127.0.0.1:9"


def accepted(request: httpx.Request, status: int = 202) -> httpx.Response:
    body = json.loads(request.content)
    answer = {
        "uuid": body["uuid"],
        "type": body["type"],
        "timestamp": "2026-01-01T00:00:00Z",
        "deliveries": 1,
    }
    return httpx.Response(status, json=answer)


class Script:
    """Answers requests with ``steps`` in order (a response factory, or an exception to raise)."""

    def __init__(self, *steps: httpx.Response | Exception | None) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Exception):
            raise step
        return step if step is not None else accepted(request)


def sync_client(script: Script, sleeps: list[float], **options: int) -> Herald:
    http = httpx.Client(transport=httpx.MockTransport(script))
    return Herald(BASE_URL, "key", http_client=http, sleep=sleeps.append, **options)


def test_retry_after_seconds_is_waited_then_the_same_body_is_sent_again() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "2"}))
    sleeps: list[float] = []
    result = sync_client(script, sleeps).send_event(EVENT)
    assert sleeps == [2.0]
    assert len(script.requests) == 2
    first, second = (json.loads(r.content) for r in script.requests)
    assert first == second
    assert result.uuid == first["uuid"]


def test_retry_after_as_an_http_date_is_honoured() -> None:
    in_30_s = formatdate(time.time() + 30, usegmt=True)
    script = Script(httpx.Response(429, headers={"Retry-After": in_30_s}))
    sleeps: list[float] = []
    sync_client(script, sleeps).send_event(EVENT)
    assert len(sleeps) == 1
    assert 27 <= sleeps[0] <= 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), ("", None), ("soon", None), (None, None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_backoff_grows_exponentially_with_jitter() -> None:
    script = Script(httpx.Response(502), httpx.Response(504), httpx.Response(503))
    sleeps: list[float] = []
    sync_client(script, sleeps).send_event(EVENT)
    assert len(script.requests) == 4
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0
    assert 1.0 <= sleeps[2] <= 2.0


def test_gives_up_after_max_retries_with_unavailable_error() -> None:
    script = Script(*[httpx.Response(503) for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(UnavailableError) as caught:
        sync_client(script, sleeps, max_retries=2).send_event(EVENT)
    assert caught.value.status_code == 503
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_a_retry_after_longer_than_a_minute_is_raised_not_waited() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "3600"}))
    sleeps: list[float] = []
    with pytest.raises(UnavailableError):
        sync_client(script, sleeps).send_event(EVENT)
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, HeraldError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, HeraldError),
        (422, ValidationError),
        (500, HeraldError),
    ],
)
def test_other_error_answers_are_never_retried(status: int, error: type[HeraldError]) -> None:
    script = Script(httpx.Response(status, json={"detail": "no"}))
    sleeps: list[float] = []
    with pytest.raises(error) as caught:
        sync_client(script, sleeps).send_event(EVENT)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.detail == "no"
    assert len(script.requests) == 1
    assert sleeps == []


def test_connection_refused_is_retried_then_unavailable_without_status() -> None:
    sleeps: list[float] = []
    client = Herald(f"http://127.0.0.1:{free_port()}", sleep=sleeps.append)
    with pytest.raises(UnavailableError) as caught:
        client.event_types()
    assert caught.value.status_code is None
    assert "after 4 attempts" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleeps) == 3


def test_a_read_timeout_is_retried_for_an_event_but_not_for_creating_a_webhook() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    sleeps: list[float] = []
    sync_client(script, sleeps).send_event(EVENT)
    assert len(script.requests) == 2

    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(UnavailableError) as caught:
        sync_client(script, sleeps).create_webhook("ops", "https://ops.example.com/hook")
    assert caught.value.status_code is None
    assert len(script.requests) == 1


def test_creating_a_webhook_is_retried_when_herald_surely_did_not_act() -> None:
    created = {
        "uuid": "5b0f3a9e-8d0c-4c86-9a53-2f1c8e1d7a41",
        "name": "ops",
        "url": "https://ops.example.com/hook",
        "enabled": True,
        "subscriptions": [],
        "disabled_reason": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "secret": "whsec_x",
    }
    steps = (httpx.ConnectError("refused"), httpx.Response(429), httpx.Response(201, json=created))
    script = Script(*steps)
    sleeps: list[float] = []
    hook = sync_client(script, sleeps).create_webhook("ops", "https://ops.example.com/hook")
    assert hook.secret == "whsec_x"
    assert len(script.requests) == 3

    script = Script(httpx.Response(503))
    with pytest.raises(UnavailableError):
        sync_client(script, sleeps).create_webhook("ops", "https://ops.example.com/hook")
    assert len(script.requests) == 1


def test_max_retries_zero_tries_once() -> None:
    script = Script(httpx.Response(503))
    sleeps: list[float] = []
    with pytest.raises(UnavailableError):
        sync_client(script, sleeps, max_retries=0).send_event(EVENT)
    assert len(script.requests) == 1


async def test_async_client_retries_with_its_own_sleep() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "1"}), httpx.ReadError("reset"))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    async with AsyncHerald(BASE_URL, "key", http_client=http, sleep=sleep) as client:
        result = await client.send_event(EVENT)
    await http.aclose()
    assert len(script.requests) == 3
    assert sleeps[0] == 1.0
    assert 0.5 <= sleeps[1] <= 1.0
    assert result.uuid == json.loads(script.requests[0].content)["uuid"]


async def test_async_client_connection_refused_is_unavailable() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncHerald(f"http://127.0.0.1:{free_port()}", max_retries=1, sleep=sleep) as client:
        with pytest.raises(UnavailableError) as caught:
            await client.send_event(EVENT)
    assert caught.value.status_code is None
    assert len(sleeps) == 1
