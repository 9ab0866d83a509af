"""A fake PostHog on 127.0.0.1: records the raw bytes of every ``/batch/`` request it receives.

It can be started on a port chosen beforehand (so a test can point Herald at a backend that
is down, then bring it up), and answer with scripted statuses before its normal 200.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from tests.support.process import free_port

TELEMETRY: dict[str, Any] = {
    "dispatcher_enabled": True,
    "telemetry_api_key": "phc_test",
    "telemetry_flush_interval_seconds": 0.05,
    "poll_interval_seconds": 0.05,
    "retry_schedule": "100ms,100ms,100ms",
    "lease_seconds": 5,
    "delivery_timeout_seconds": 2,
    "shutdown_grace_seconds": 1,
}
"""Fast settings for telemetry tests; add ``telemetry_url``."""


class PostHogReceiver:
    """Records request bodies; answers the next requests with ``statuses``, then 200."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[bytes] = []
        """Every request body, whatever the answer."""
        self.bodies: list[bytes] = []
        """The bodies answered 200 (what PostHog would have ingested)."""
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every accepted request body, parsed."""
        return [json.loads(body) for body in self.bodies]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every accepted event, in arrival order (duplicates included)."""
        return [item for request in self.requests for item in request["batch"]]

    def uuid_counts(self) -> Counter[str]:
        return Counter(event["uuid"] for event in self.events)

    async def wait_for_events(self, count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` distinct event uuids arrived."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.uuid_counts()) >= count)
        return self.events

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.statuses.pop(0) if self.statuses else 200
        async with self._arrived:
            self.paths.append(request.path)
            self.received.append(body)
            if status == 200:
                self.bodies.append(body)
            self._arrived.notify_all()
        return web.json_response({"status": 1 if status == 200 else 0}, status=status)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def running_posthog(port: int | None = None) -> AsyncIterator[PostHogReceiver]:
    receiver = PostHogReceiver(port)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.close()
