"""The shared webhook clients against a real receiver on 127.0.0.1 (names come from a stub resolver)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from service.delivery.http import HttpClients, create_http_clients, post_webhook
from service.delivery.retry import describe_error
from tests.support.resolvers import stub_resolver


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A tiny aiohttp app on 127.0.0.1:<free port> recording what it receives."""
    state = Receiver(port=0)

    async def record(request: web.Request) -> None:
        state.requests.append(
            Received(request.method, request.path_qs, dict(request.headers), await request.read())
        )

    async def hook(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=204)

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"location": "/hook"})

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        await state.release.wait()
        return web.Response(status=200)

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        while not state.release.is_set():
            await response.write(b".")
            await asyncio.sleep(0.05)
        return response

    async def big(request: web.Request) -> web.Response:
        return web.Response(status=429, body=b"x" * 100_000, headers={"retry-after": "7"})

    async def cookie(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=200, headers={"set-cookie": "session=abc; Path=/"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/hang", hang)
    app.router.add_post("/trickle", trickle)
    app.router.add_post("/big", big)
    app.router.add_post("/cookie", cookie)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    state.release.set()
    await runner.cleanup()


@pytest.fixture
async def open_clients() -> AsyncIterator[HttpClients]:
    clients = create_http_clients(
        allow_private=True, timeout_s=5.0, max_connections=16, resolver=stub_resolver({})
    )
    yield clients
    await clients.aclose()


@pytest.fixture
async def guarded_clients() -> AsyncIterator[HttpClients]:
    resolver = stub_resolver({"rebind.test": ["127.0.0.1"], "internal.test": ["10.0.0.1"]})
    clients = create_http_clients(allow_private=False, timeout_s=5.0, max_connections=16, resolver=resolver)
    yield clients
    await clients.aclose()


async def test_post_reaches_the_receiver_with_body_and_headers(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    body = b'{"hello": "world"}'
    headers = {"content-type": "application/json", "webhook-id": "abc", "user-agent": "Herald/test"}
    response = await open_clients.verified.post(receiver.url(), content=body, headers=headers)
    assert response.status_code == 204
    [received] = receiver.requests
    assert received.method == "POST"
    assert received.body == body
    assert received.headers["webhook-id"] == "abc"
    assert received.headers["User-Agent"] == "Herald/test"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Content-Length"] == str(len(body))


async def test_redirects_are_not_followed(receiver: Receiver, open_clients: HttpClients) -> None:
    response = await open_clients.verified.post(receiver.url("/redirect"), content=b"{}")
    assert response.status_code == 302
    assert [r.path for r in receiver.requests] == ["/redirect"]


async def test_hanging_receiver_times_out_quickly(receiver: Receiver) -> None:
    clients = create_http_clients(allow_private=True, timeout_s=0.3, max_connections=4)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(httpx.TimeoutException) as info:
            await clients.verified.post(receiver.url("/hang"), content=b"{}")
    finally:
        await clients.aclose()
    assert loop.time() - started < 2.0
    assert describe_error(info.value, 0.3) == "timeout after 0.3s"


async def test_trickling_receiver_hits_the_attempt_deadline(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(httpx.TimeoutException) as info:
        await post_webhook(
            open_clients.verified, receiver.url("/trickle"), content=b"{}", headers={}, timeout_s=0.4
        )
    assert loop.time() - started < 2.0
    assert describe_error(info.value, 0.4) == "timeout after 0.4s"


async def test_post_webhook_keeps_a_bounded_excerpt_and_retry_after(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    answer = await post_webhook(
        open_clients.verified, receiver.url("/big"), content=b"{}", headers={}, timeout_s=5
    )
    assert answer.status_code == 429
    assert answer.retry_after == "7"
    assert answer.body_excerpt == b"x" * 4096


async def test_refused_connection_is_described_as_such(open_clients: HttpClients) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(httpx.TransportError) as info:
        await open_clients.verified.post(f"http://127.0.0.1:{closed_port}/hook", content=b"{}")
    assert describe_error(info.value, 5.0) == "connection refused"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "LocalHost."])
async def test_literal_private_destination_is_refused(
    receiver: Receiver, guarded_clients: HttpClients, host: str
) -> None:
    with pytest.raises(httpx.ConnectError) as info:
        await guarded_clients.verified.post(receiver.url(host=host), content=b"{}")
    assert "loopback address, refused" in describe_error(info.value, 5.0)
    assert "/hook" not in describe_error(info.value, 5.0)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("rebind.test", "destination rebind.test resolves to a loopback address (127.0.0.1), refused"),
        ("internal.test", "destination internal.test resolves to a private address (10.0.0.1), refused"),
    ],
)
async def test_name_resolving_to_a_private_address_is_refused_at_delivery(
    receiver: Receiver, guarded_clients: HttpClients, name: str, reason: str
) -> None:
    for client in (guarded_clients.verified, guarded_clients.unverified):
        with pytest.raises(httpx.TransportError) as info:
            await client.post(receiver.url(host=name), content=b"{}")
        assert describe_error(info.value, 5.0) == reason
    assert receiver.requests == []


async def test_unresolvable_name_is_described(guarded_clients: HttpClients) -> None:
    with pytest.raises(httpx.TransportError) as info:
        await guarded_clients.verified.post("http://missing.test/hook", content=b"{}")
    assert describe_error(info.value, 5.0) == "could not resolve host missing.test"


async def test_allowed_private_destination_is_reached_through_the_resolver(receiver: Receiver) -> None:
    clients = create_http_clients(
        allow_private=True,
        timeout_s=5.0,
        max_connections=4,
        resolver=stub_resolver({"receiver.test": ["127.0.0.1"]}),
    )
    try:
        response = await clients.for_webhook(verify_ssl=False).post(
            receiver.url(host="receiver.test"), content=b"{}"
        )
    finally:
        await clients.aclose()
    assert response.status_code == 204
    [received] = receiver.requests
    assert received.headers["Host"] == f"receiver.test:{receiver.port}"


async def test_cookies_set_by_a_receiver_are_not_sent_back(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    for _ in range(2):
        response = await open_clients.verified.post(receiver.url("/cookie"), content=b"{}")
        assert response.status_code == 200
    assert all("Cookie" not in r.headers for r in receiver.requests)


async def test_for_webhook_picks_the_client_by_verify_ssl() -> None:
    clients = create_http_clients(allow_private=False, timeout_s=1.0, max_connections=0)
    try:
        assert clients.for_webhook(verify_ssl=True) is clients.verified
        assert clients.for_webhook(verify_ssl=False) is clients.unverified
        assert clients.verified is not clients.unverified
        assert clients.verified.follow_redirects is False
    finally:
        await clients.aclose()


def test_clients_cannot_be_created_outside_the_event_loop() -> None:
    with pytest.raises(RuntimeError, match="inside the event loop"):
        create_http_clients(allow_private=False, timeout_s=1.0, max_connections=1)
