"""The dispatcher's wake-up: a dedicated connection LISTENing on the deliveries channel.

Ingest transactions ``NOTIFY`` the channel when they create deliveries; the callback wakes
the loop at once. The connection is watched (termination callback, plus a periodic ping for
a peer that vanished without closing) and re-opened with backoff, e.g. after a PostgreSQL
restart; every (re)connection wakes the loop too, since notifications sent while no one
listened are lost. The loop's poll is the fallback while the listener is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from service.background import Worker, sleep_or_wake
from service.db import CONNECT_TIMEOUT_S, asyncpg_dsn, server_settings
from service.delivery.backoff import backoff_s

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 5.0


class WakeupListener(Worker):
    """Calls ``on_wake`` for every notification on ``channel`` and after every (re)connection.

    Stopping cancels at once: there is nothing to finish.
    """

    def __init__(self, database_url: str, channel: str, on_wake: Callable[[], None]) -> None:
        super().__init__("listener")
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._on_wake = on_wake
        self.connected = False
        self.connections = 0

    def _notified(self, connection: object, pid: int, channel: str, payload: object) -> None:
        self._on_wake()

    async def run(self) -> None:
        """Listen until stopped, reconnecting after any failure."""
        failures = 0
        while not self.stopping:
            try:
                await self._listen_once()
            except Exception as exc:
                # A connection that worked for a while starts the backoff afresh.
                failures = 1 if self.connected else failures + 1
                if failures == 1:
                    logger.warning("deliveries listener lost its connection: %s", type(exc).__name__)
            finally:
                self.connected = False
            await self._pause(backoff_s(failures))

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings=server_settings("herald-listener")
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(self._channel, self._notified)
            if self.connections:
                logger.info("deliveries listener reconnected")
            self.connections += 1
            self.connected = True
            self._on_wake()
            # The ping finds a peer that vanished without closing the connection.
            while not await sleep_or_wake(lost, PING_INTERVAL_S):
                await conn.execute("SELECT 1", timeout=PING_TIMEOUT_S)
            raise ConnectionError("listener connection closed")
        finally:
            if not conn.is_closed():
                conn.terminate()
