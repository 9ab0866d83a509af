"""A real HTTP receiver on 127.0.0.1 for delivery tests: records requests, answers as programmed.

Each path answers with its queue of :class:`Reply` objects (one per request) and then its
default reply, so a test can script "503 with Retry-After, then 200". A reply can delay,
or hang until the receiver closes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    delay_s: float = 0.0
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at_monotonic: float

    @property
    def attempt(self) -> int:
        return int(self.headers["herald-attempt"])

    @property
    def delivery_id(self) -> str:
        return self.headers["herald-delivery-id"]

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Records every request; answers per path as programmed with :meth:`reply`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most requests it was answering at once."""
        self.port = 0
        self._scripts: dict[str, list[Reply]] = {}
        self._defaults: dict[str, Reply] = {}
        self._arrived = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(self, path: str, *replies: Reply, then: Reply | None = None) -> None:
        """Answer the next requests to ``path`` with ``replies`` in order, then with ``then``."""
        self._scripts[path] = list(replies)
        if then is not None:
            self._defaults[path] = then

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout_s: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests (to ``path``, if given) arrived; return them."""

        def matching() -> list[Received]:
            return [r for r in self.requests if path is None or r.path == path]

        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(matching()) >= count)
        return matching()

    async def wait_until(self, predicate: Callable[[list[Received]], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self.requests))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received(
            request.path, {k.lower(): v for k, v in request.headers.items()}, body, time.monotonic()
        )
        script = self._scripts.get(request.path)
        reply = script.pop(0) if script else self._defaults.get(request.path, Reply())
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if reply.hang:
                await self._closing.wait()
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
        finally:
            self.in_flight -= 1
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.close()
