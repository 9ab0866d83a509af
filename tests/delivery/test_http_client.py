"""The one HTTP sender, as production uses it, against a real receiver on 127.0.0.1 (names come
from a stub resolver)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from service.delivery.http import HttpClients, HttpSender, create_http_clients
from service.delivery.sending import SendFailed, WebhookResponse
from tests.support.resolvers import stub_resolver


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: object


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
            Received(
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                request.transport.get_extra_info("peername") if request.transport else None,
            )
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
    clients = create_http_clients(allow_private=True, max_connections=16, resolver=stub_resolver({}))
    yield clients
    await clients.aclose()


@pytest.fixture
async def guarded_clients() -> AsyncIterator[HttpClients]:
    resolver = stub_resolver({"rebind.test": ["127.0.0.1"], "internal.test": ["10.0.0.1"]})
    clients = create_http_clients(allow_private=False, max_connections=16, resolver=resolver)
    yield clients
    await clients.aclose()


async def post(sender: HttpSender, url: str, timeout_s: float = 5.0, **headers: str) -> WebhookResponse:
    return await sender.post(url, content=b"{}", headers=headers, timeout_s=timeout_s)


async def refusal(sender: HttpSender, url: str, timeout_s: float = 5.0) -> str:
    """The reason the sender gives for getting no answer from ``url``."""
    with pytest.raises(SendFailed) as info:
        await post(sender, url, timeout_s)
    return info.value.reason


async def test_post_reaches_the_receiver_with_body_and_headers(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    body = b'{"hello": "world"}'
    headers = {"content-type": "application/json", "webhook-id": "abc", "user-agent": "Herald/test"}
    response = await open_clients.verified.post(receiver.url(), content=body, headers=headers, timeout_s=5)
    assert response == WebhookResponse(status_code=204, retry_after=None, body_excerpt=b"")
    [received] = receiver.requests
    assert received.method == "POST"
    assert received.path == "/hook"
    assert received.body == body
    assert received.headers["webhook-id"] == "abc"
    assert received.headers["User-Agent"] == "Herald/test"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Content-Length"] == str(len(body))
    assert received.headers["Host"] == f"127.0.0.1:{receiver.port}"
    # Compressed answers could inflate past the excerpt kept.
    assert received.headers["Accept-Encoding"] == "identity"


async def test_connections_are_kept_alive_and_reused(receiver: Receiver, open_clients: HttpClients) -> None:
    for _ in range(3):
        assert (await post(open_clients.verified, receiver.url())).status_code == 204
    assert len({r.peer for r in receiver.requests}) == 1


async def test_redirects_are_not_followed(receiver: Receiver, open_clients: HttpClients) -> None:
    response = await post(open_clients.verified, receiver.url("/redirect"))
    assert response.status_code == 302
    assert [r.path for r in receiver.requests] == ["/redirect"]


async def test_hanging_receiver_times_out_quickly(receiver: Receiver, open_clients: HttpClients) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await refusal(open_clients.verified, receiver.url("/hang"), timeout_s=0.3) == "timeout after 0.3s"
    assert loop.time() - started < 2.0


async def test_trickling_receiver_hits_the_attempt_deadline(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (
        await refusal(open_clients.verified, receiver.url("/trickle"), timeout_s=0.4) == "timeout after 0.4s"
    )
    assert loop.time() - started < 2.0


async def test_post_keeps_a_bounded_excerpt_and_retry_after(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    answer = await post(open_clients.verified, receiver.url("/big"))
    assert answer.status_code == 429
    assert answer.retry_after == "7"
    assert answer.body_excerpt == b"x" * 4096
    # The rest of the body was left unread: that connection is dropped, a new one serves the next.
    assert (await post(open_clients.verified, receiver.url())).status_code == 204


async def test_refused_connection_is_described_as_such(open_clients: HttpClients) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert (
        await refusal(open_clients.verified, f"http://127.0.0.1:{closed_port}/hook") == "connection refused"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "LocalHost."])
async def test_literal_private_destination_is_refused(
    receiver: Receiver, guarded_clients: HttpClients, host: str
) -> None:
    for sender in (guarded_clients.verified, guarded_clients.unverified):
        reason = await refusal(sender, receiver.url("/hook?token=secret", host=host))
        assert "loopback address, refused" in reason
        assert "/hook" not in reason
        assert "secret" not in reason
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
    for sender in (guarded_clients.verified, guarded_clients.unverified):
        assert await refusal(sender, receiver.url(host=name)) == reason
    assert receiver.requests == []


async def test_unresolvable_name_is_described(guarded_clients: HttpClients) -> None:
    reason = await refusal(guarded_clients.verified, "http://missing.test/hook?token=secret")
    assert reason == "could not resolve host missing.test"


async def test_allowed_private_destination_is_reached_through_the_resolver(receiver: Receiver) -> None:
    clients = create_http_clients(
        allow_private=True, max_connections=4, resolver=stub_resolver({"receiver.test": ["127.0.0.1"]})
    )
    try:
        response = await post(clients.for_webhook(verify_ssl=False), receiver.url(host="receiver.test"))
    finally:
        await clients.aclose()
    assert response.status_code == 204
    [received] = receiver.requests
    assert received.headers["Host"] == f"receiver.test:{receiver.port}"


async def test_cookies_set_by_a_receiver_are_not_sent_back(
    receiver: Receiver, open_clients: HttpClients
) -> None:
    for _ in range(2):
        assert (await post(open_clients.verified, receiver.url("/cookie"))).status_code == 200
    assert len(receiver.requests) == 2
    assert all("Cookie" not in r.headers for r in receiver.requests)


@pytest.fixture
async def tls_port(tmp_path: Path) -> AsyncIterator[int]:
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_tls_is_verified_unless_the_webhook_says_not_to(
    tls_port: int, open_clients: HttpClients
) -> None:
    url = f"https://127.0.0.1:{tls_port}/hook"
    assert (
        await refusal(open_clients.for_webhook(verify_ssl=True), url) == "TLS certificate verification failed"
    )
    assert (await post(open_clients.for_webhook(verify_ssl=False), url)).status_code == 204


async def test_for_webhook_picks_the_sender_by_verify_ssl() -> None:
    clients = create_http_clients(allow_private=False, max_connections=0)
    try:
        assert clients.for_webhook(verify_ssl=True) is clients.verified
        assert clients.for_webhook(verify_ssl=False) is clients.unverified
        assert clients.verified is not clients.unverified
    finally:
        await clients.aclose()


def test_clients_cannot_be_created_outside_the_event_loop() -> None:
    with pytest.raises(RuntimeError, match="inside the event loop"):
        create_http_clients(allow_private=False, max_connections=1)
