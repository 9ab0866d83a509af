"""Request heads, slow clients and batch bodies, on real sockets: Herald's app under uvicorn on
127.0.0.1 with ``herald serve``'s options, its HTTP protocol (``service.http_limits``) included."""

from __future__ import annotations

import asyncio
import pickle
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from service.http_limits import MAX_HEAD_BYTES, HttpLimits, LimitedHttpToolsProtocol
from service.serving import _uvicorn_options
from tests.support.app import AppFactory, RunningApp, make_settings
from tests.support.event_samples import sample_event

# Waits on what the server does, bounded so that a failure fails instead of hanging the suite.
EVENT_TIMEOUT_S = 10.0
SHORT_TIMEOUT_S = 0.4
HEALTH = b"GET /health/live HTTP/1.1\r\nHost: herald.test\r\n"


@asynccontextmanager
async def served(app: FastAPI, limits: HttpLimits | None = None) -> AsyncIterator[int]:
    """``app`` (its lifespan already running) served by uvicorn with ``herald serve``'s options on
    a free port of 127.0.0.1; ``limits`` in place of those the settings give."""
    options = _uvicorn_options(app.state.settings) | {"lifespan": "off"}
    if limits is not None:
        options["http"] = partial(LimitedHttpToolsProtocol, limits=limits)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while not server.started:
                assert not task.done(), "uvicorn did not start"
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a ``content-length``: its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def exchange(port: int, data: bytes) -> tuple[int, bytes]:
    """Send ``data`` on a new connection and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            return await read_response(reader)
    finally:
        writer.close()


async def closed_by_server(port: int, first: bytes, trickle: bytes, every_s: float) -> tuple[float, bytes]:
    """Send ``first``, then ``trickle`` every ``every_s`` until the server closes the connection:
    how long that took and what it answered meanwhile."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()

    async def trickling() -> None:
        writer.write(first)
        while trickle:
            await asyncio.sleep(every_s)
            writer.write(trickle)
            await writer.drain()

    sender = asyncio.create_task(trickling())
    try:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            answered = await reader.read()  # until the server closes
        return time.monotonic() - started, answered
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()


def test_herald_serve_runs_the_limited_protocol_with_the_body_timeout_setting() -> None:
    options = _uvicorn_options(make_settings(None, body_timeout_seconds=7.5))
    protocol = options["http"]
    assert protocol.func is LimitedHttpToolsProtocol
    assert protocol.keywords == {"limits": HttpLimits(body_timeout_s=7.5)}
    # ``--workers`` hands the options to spawned processes: they must pickle.
    copy = pickle.loads(pickle.dumps(protocol))  # noqa: S301 (our own bytes)
    assert copy.func is LimitedHttpToolsProtocol
    assert copy.keywords == protocol.keywords


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(HEALTH + b"X-Big: " + b"a" * 70 * 1024 + b"\r\n\r\n", id="one long header"),
        pytest.param(b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 60) for i in range(1200)), id="many headers"),
        pytest.param(
            b"GET /health/live?q=" + b"c" * 70 * 1024 + b" HTTP/1.1\r\nHost: h\r\n\r\n", id="long URL"
        ),
    ],
)
async def test_a_head_over_64_kib_is_answered_431_and_the_server_keeps_answering(
    herald: RunningApp, head: bytes
) -> None:
    if not head.startswith(b"GET"):
        head = HEALTH + head + b"\r\n"
    assert len(head) > MAX_HEAD_BYTES
    async with served(herald.app) as port:
        status, body = await exchange(port, head)
        assert status == 431
        assert orjson.loads(body)["detail"] == (
            f"request head too large: the request line and headers may take at most {MAX_HEAD_BYTES} bytes"
        )
        assert await exchange(port, HEALTH + b"\r\n") == (200, b'{"status":"ok"}')


async def test_a_head_just_under_the_limit_is_served(herald: RunningApp) -> None:
    padding = MAX_HEAD_BYTES - len(HEALTH) - len(b"X-Pad: \r\n\r\n")
    head = HEALTH + b"X-Pad: " + b"p" * padding + b"\r\n\r\n"
    assert len(head) == MAX_HEAD_BYTES
    async with served(herald.app) as port:
        assert (await exchange(port, head))[0] == 200


@pytest.mark.parametrize(
    ("first", "trickle"),
    [
        pytest.param(b"", b"", id="nothing sent"),
        pytest.param(b"GET /health/live HTTP/1.1\r\n", b"X-A: b\r\n", id="a header every 50 ms"),
    ],
)
async def test_a_connection_without_a_whole_head_in_time_is_closed(
    herald: RunningApp, first: bytes, trickle: bytes
) -> None:
    limits = HttpLimits(head_timeout_s=SHORT_TIMEOUT_S)
    async with served(herald.app, limits) as port:
        waited_s, answered = await closed_by_server(port, first, trickle, every_s=0.05)
        assert answered == b""
        assert waited_s >= SHORT_TIMEOUT_S


async def test_an_idle_kept_alive_connection_outlives_the_head_timeout(herald: RunningApp) -> None:
    # uvicorn's keep-alive timeout (5 s) bounds the wait between requests; the head timeout counts
    # from the next request's first byte.
    limits = HttpLimits(head_timeout_s=SHORT_TIMEOUT_S)
    async with served(herald.app, limits) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for number in range(2):
                if number:
                    await asyncio.sleep(2 * SHORT_TIMEOUT_S)  # idle, the time passing is the point
                writer.write(HEALTH + b"\r\n")
                async with asyncio.timeout(EVENT_TIMEOUT_S):
                    assert (await read_response(reader))[0] == 200
        finally:
            writer.close()


async def test_a_body_sent_too_slowly_is_closed_unanswered(app_factory: AppFactory) -> None:
    async with app_factory(body_timeout_seconds=SHORT_TIMEOUT_S) as running, served(running.app) as port:
        head = b"POST /api/v1/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        first = head + b"Content-Length: 1000\r\n\r\n" + b'{"type": '
        waited_s, answered = await closed_by_server(port, first, b" ", every_s=0.05)
        assert answered == b""
        assert waited_s >= SHORT_TIMEOUT_S


async def test_a_huge_trailer_closes_the_connection(herald: RunningApp) -> None:
    # httptools accumulates a trailer as it does a header: the same bound holds after the body
    # (give or take the read in which the body ended).
    async with served(herald.app) as port:
        head = b"POST /api/v1/events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        trailer = b"X-T: " + b"t" * 2 * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n"
        waited_s, answered = await closed_by_server(port, head + b"2\r\n{}\r\n0\r\n" + trailer, b"", 0)
        assert answered == b""
        assert waited_s < EVENT_TIMEOUT_S


BATCH_HEAD = b"POST /api/v1/events/batch HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
SMALL_BATCH_BYTES = 4096


async def test_a_batch_declared_over_the_limit_is_refused_before_its_body_is_sent(
    app_factory: AppFactory,
) -> None:
    async with app_factory(max_batch_bytes=SMALL_BATCH_BYTES) as running, served(running.app) as port:
        # Only the head is sent: the answer cannot wait for the body.
        status, body = await exchange(port, BATCH_HEAD + b"Content-Length: 400000000\r\n\r\n")
        assert status == 413
        assert (
            orjson.loads(body)["detail"] == f"request body too large: the limit is {SMALL_BATCH_BYTES} bytes"
        )


async def test_a_chunked_batch_is_refused_once_over_the_limit_without_the_rest(
    app_factory: AppFactory,
) -> None:
    async with app_factory(max_batch_bytes=SMALL_BATCH_BYTES) as running, served(running.app) as port:
        chunk = b"%x\r\n%s\r\n" % (1024, b" " * 1024)
        # Five chunks, one over the limit, and never the last chunk: the body has no end.
        data = BATCH_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 5
        status, body = await exchange(port, data)
        assert status == 413
        assert (
            orjson.loads(body)["detail"] == f"request body too large: the limit is {SMALL_BATCH_BYTES} bytes"
        )


async def test_a_batch_under_the_limit_is_recorded(app_factory: AppFactory) -> None:
    async with app_factory(max_batch_bytes=SMALL_BATCH_BYTES) as running, served(running.app) as port:
        body = orjson.dumps({"events": [sample_event("project:created")]})
        assert len(body) < SMALL_BATCH_BYTES
        status, answer = await exchange(port, BATCH_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert status == 202, answer
