"""A fast webhook receiver for the benchmarks, run as its own process.

``python -m bench.fast_receiver --port N`` serves HTTP/1.1 (keep-alive) on 127.0.0.1 with a raw
asyncio protocol on uvloop, so that receiving costs a small fraction of what sending does:

- ``POST /hang...`` is never answered (the sender's timeout ends it);
- ``POST /slowN...`` (``N`` digits) answers ``204`` after ``N`` ms, e.g. ``/slow5-ordered``,
  ``/slow20-a`` (a receiver doing a little work; one request at a time per connection, as
  Herald sends them);
- any other ``POST`` answers ``204`` at once and is counted per path, with its
  ``webhook-id`` (to count duplicates) and, for ``/latency``, its arrival time;
- ``GET /_stats`` answers the counts as JSON; ``GET /_arrivals`` answers (and forgets) the
  ``/latency`` arrivals as ``{webhook-id: time.monotonic()}``. ``CLOCK_MONOTONIC`` is one clock
  for every process of the machine, so the load generator can subtract its own readings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections import Counter
from typing import Any

import orjson
import uvloop

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nserver: bench\r\n\r\n"
LATENCY_PATH = "/latency"
SLOW_PATH = re.compile(r"/slow(\d+)")


class Tally:
    """What arrived, per path."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.ids: dict[str, set[bytes]] = {}
        self.first_at: dict[str, float] = {}
        self.last_at: dict[str, float] = {}
        self.arrivals: dict[str, float] = {}

    def record(self, path: str, webhook_id: bytes | None, at: float) -> None:
        self.counts[path] += 1
        self.first_at.setdefault(path, at)
        self.last_at[path] = at
        if webhook_id is not None:
            self.ids.setdefault(path, set()).add(webhook_id)
            if path == LATENCY_PATH:
                self.arrivals[webhook_id.decode()] = at

    def stats(self) -> dict[str, Any]:
        return {
            path: {
                "count": n,
                "unique": len(self.ids.get(path, ())),
                "first_at": self.first_at[path],
                "last_at": self.last_at[path],
            }
            for path, n in self.counts.items()
        }


class HttpReceiver(asyncio.Protocol):
    """One connection: parse requests as they come (pipelining allowed), answer in order."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.transport: asyncio.WriteTransport | None = None
        self.hanging = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they write all the same.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.hanging:
            return
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            length = 0
            webhook_id: bytes | None = None
            for line in head[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"webhook-id":
                    webhook_id = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            method, path, _ = head[0].decode("latin-1").split(" ", 2)
            self.answer(method, path, webhook_id)
            if self.hanging:
                return

    def answer(self, method: str, path: str, webhook_id: bytes | None) -> None:
        assert self.transport is not None
        if method == "GET" and path.startswith("/_"):
            if path == "/_stats":
                body = orjson.dumps(self.tally.stats())
            else:
                body = orjson.dumps(self.tally.arrivals)
                self.tally.arrivals = {}
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            return
        self.tally.record(path, webhook_id, time.monotonic())
        if path.startswith("/hang"):
            self.hanging = True  # keep the connection open, say nothing
            return
        slow = SLOW_PATH.match(path)
        if slow is not None:
            delay_s = int(slow.group(1)) / 1000
            asyncio.get_running_loop().call_later(delay_s, self._write_later, NO_CONTENT)
            return
        self.transport.write(NO_CONTENT)

    def _write_later(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int) -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpReceiver(tally), "127.0.0.1", port, backlog=1024)
    sockets = server.sockets
    print(orjson.dumps({"port": sockets[0].getsockname()[1]}).decode(), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="fast loopback webhook receiver")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
