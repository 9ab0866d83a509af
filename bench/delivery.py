"""Delivery engine benchmark: throughput, idle latency, a healthy endpoint beside a hanging one.

Runs ``herald serve`` (one process, dispatcher on) against a fresh database and a fast
receiver on loopback in another process, then reports:

- throughput: deliveries/s draining a backlog (K webhooks x N events), measured at the
  receiver between the 10 % and 90 % marks; and a steady run where events are ingested
  through the API while they are delivered;
- idle latency: ingest request sent → webhook received, one event at a time (p50/p99);
- hanging: a healthy webhook's drain rate alone, and beside a webhook that never answers.

Usage: ``uv run python bench/delivery.py [--events 20000] [--subscribers 4]``. The database is
``HERALD_DATABASE_URL``'s server (a fresh database per scenario) or, unset, an embedded one.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import orjson
from sqlalchemy.engine import make_url

from service import migrations
from service.db import EmbeddedPostgres, asyncpg_dsn

BATCH_EVENTS = 500


class _ReceiverProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: 200 at once, or never for ``/hang``; records arrivals."""

    def __init__(self, records: _Records) -> None:
        import httptools

        self._records = records
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._webhook_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self._webhook_id = value

    def on_message_complete(self) -> None:
        now = time.monotonic()
        path, method = self._url.decode(), self._parser.get_method()
        self._url = b""
        assert self._transport is not None
        if path == "/stats":
            body = orjson.dumps(self._records.stats())
        elif path == "/reset":
            self._records.__init__()  # type: ignore[misc]
            body = b"{}"
        elif path == "/hang":
            self._records.add(path, self._webhook_id, now)
            return
        else:
            self._records.add(path, self._webhook_id, now)
            body = b"ok"
        del method
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        self._transport.write(head + body)


class _Records:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}
        self.arrivals: dict[str, float] = {}

    def add(self, path: str, webhook_id: bytes, now: float) -> None:
        self.counts[path] = self.counts.get(path, 0) + 1
        self.times.setdefault(path, []).append(now)
        if path == "/lat":
            self.arrivals.setdefault(webhook_id.decode(), now)

    def stats(self) -> dict[str, Any]:
        return {"counts": self.counts, "times": self.times, "arrivals": self.arrivals}


def serve_receiver(port: int) -> None:
    """Run the receiver on 127.0.0.1:``port`` until killed (in its own process)."""
    import uvloop

    async def run() -> None:
        records = _Records()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _ReceiverProtocol(records), "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(run())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_event(number: int) -> dict[str, Any]:
    """A realistic ``pipeline-run:failed`` event (~700 bytes of payload)."""
    return {
        "type": "project:one-off-job:pipeline-run:failed",
        "uuid": str(uuid.uuid4()),
        "project": {"uuid": str(uuid.uuid4()), "name": "demo"},
        "job": {
            "uuid": str(uuid.uuid4()),
            "name": "nightly",
            "status": "STARTED",
            "pipeline_uuid": str(uuid.uuid4()),
            "pipeline_name": "train",
            "total_runs": 3,
        },
        "pipeline_run": {
            "uuid": str(uuid.uuid4()),
            "status": "FAILURE",
            "number": number,
            "steps": [
                {"uuid": str(uuid.uuid4()), "title": "Load"},
                {"uuid": str(uuid.uuid4()), "title": "Fit"},
            ],
            "failed_steps": [{"uuid": str(uuid.uuid4()), "title": "Load"}],
        },
    }


class Databases:
    """Fresh migrated databases on one server (HERALD_DATABASE_URL's, or an embedded one)."""

    def __init__(self) -> None:
        self._embedded: EmbeddedPostgres | None = None
        self.admin_url = os.environ.get("HERALD_DATABASE_URL", "")

    async def __aenter__(self) -> Databases:
        if not self.admin_url:
            self._embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="hbench", dir="/tmp")))
            self.admin_url = await self._embedded.astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._embedded is not None:
            await self._embedded.astop()

    async def fresh(self) -> str:
        name = f"herald_bench_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        await migrations.upgrade(url)
        return url


class Receiver:
    """The fast receiver, in its own process; asked for its records over HTTP."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "receiver", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(self.url("/stats"))
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(self.url("/stats"))
            data: dict[str, Any] = response.json()
            if "counts" not in data:
                raise RuntimeError(f"receiver answered {response.status_code} {response.text[:200]!r}")
            return data

    async def reset(self) -> None:
        async with httpx.AsyncClient() as client:
            await client.post(self.url("/reset"))


@asynccontextmanager
async def herald(database_url: str, **settings: str) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """``herald serve`` in a subprocess; yields a client to its API and its pid; SIGTERM on exit."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    env |= {
        "HERALD_DATABASE_URL": database_url,
        "HERALD_MIGRATE_ON_START": "false",
        "HERALD_ALLOW_PRIVATE_DESTINATIONS": "true",
        **{f"HERALD_{key.upper()}": value for key, value in settings.items()},
    }
    log = open(f"/tmp/herald-bench-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        cwd=tempfile.gettempdir(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError(f"herald exited, see {log.name}")
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            yield client, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()
        log.close()


async def create_webhooks(client: httpx.AsyncClient, urls: list[str]) -> None:
    for i, url in enumerate(urls):
        body = {"name": f"bench {i}", "url": url, "subscriptions": [{"event_type": "*"}]}
        response = await client.post("/api/v1/subscribers/webhooks", json=body)
        response.raise_for_status()


async def ingest(client: httpx.AsyncClient, count: int) -> None:
    for start in range(0, count, BATCH_EVENTS):
        events = [make_event(i) for i in range(start, min(count, start + BATCH_EVENTS))]
        response = await client.post("/api/v1/events/batch", json={"events": events})
        response.raise_for_status()


async def wait_for_count(receiver: Receiver, prefix: str, total: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await receiver.stats()
        received = sum(n for path, n in stats["counts"].items() if path.startswith(prefix))
        if received >= total or time.monotonic() > deadline:
            stats["received"] = received
            return stats
        await asyncio.sleep(0.5)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds used so far by the machine's live PostgreSQL processes (backends come and go)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text or "(postmaster)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def sustained_rate(times: list[float]) -> float:
    """Receipts per second between the 10 % and 90 % marks (no warm-up, no tail)."""
    times = sorted(times)
    low, high = times[len(times) // 10], times[(len(times) * 9) // 10]
    return (len(times) * 0.8) / (high - low) if high > low else float("nan")


async def drain(
    dbs: Databases, receiver: Receiver, paths: list[str], events: int, measured: str, **settings: str
) -> tuple[float, float, float]:
    """Ingest a backlog with the dispatcher off, then time its delivery.

    Returns deliveries/s and the CPU microseconds per delivery of Herald and of PostgreSQL
    (approximate: backends that exit during the run are not counted).
    """
    url = await dbs.fresh()
    async with herald(url, dispatcher_enabled="false") as (client, _):
        await create_webhooks(client, [receiver.url(path) for path in paths])
        await ingest(client, events)
    await receiver.reset()
    expected = events * sum(path.startswith(measured) for path in paths)
    async with herald(url, dispatcher_enabled="true", **settings) as (_, pid):
        cpu_before_s, pg_before_s = cpu_s(pid), postgres_cpu_s()
        stats = await wait_for_count(receiver, measured, expected, timeout_s=300)
        cpu_used_s, pg_used_s = cpu_s(pid) - cpu_before_s, postgres_cpu_s() - pg_before_s
    assert stats["received"] >= expected, stats["received"]
    times = [t for path, ts in stats["times"].items() if path.startswith(measured) for t in ts]
    return sustained_rate(times), cpu_used_s / expected * 1e6, pg_used_s / expected * 1e6


async def steady(
    dbs: Databases, receiver: Receiver, subscribers: int, rate_per_s: int, duration_s: float
) -> str:
    """Ingest through the API at ``rate_per_s`` deliveries/s while the dispatcher delivers them."""
    url = await dbs.fresh()
    await receiver.reset()
    batch = 100
    interval_s = batch * subscribers / rate_per_s
    async with herald(url, dispatcher_enabled="true") as (client, _):
        await create_webhooks(client, [receiver.url(f"/fast{i}") for i in range(subscribers)])
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < duration_s:
            events = [make_event(i) for i in range(batch)]
            (await client.post("/api/v1/events/batch", json={"events": events})).raise_for_status()
            sent += batch
            await asyncio.sleep(max(0.0, start + (sent / batch) * interval_s - time.monotonic()))
        ingest_s = time.monotonic() - start
        lag_stats = await receiver.stats()
        at_end = sum(lag_stats["counts"].values())
        stats = await wait_for_count(receiver, "/fast", sent * subscribers, timeout_s=120)
        done_s = time.monotonic() - start
    delivered = stats["received"]
    return (
        f"offered {sent * subscribers / ingest_s:,.0f} deliveries/s for {ingest_s:.1f}s; "
        f"{at_end:,} of {sent * subscribers:,} received when ingest ended, "
        f"all {delivered:,} after {done_s:.1f}s "
        f"({delivered / done_s:,.0f}/s overall)"
    )


async def latency(dbs: Databases, receiver: Receiver, count: int) -> tuple[list[float], list[float]]:
    """Ingest one event at a time at idle; return ms from request sent, and from 202 received, to receipt."""
    url = await dbs.fresh()
    await receiver.reset()
    sent: dict[str, tuple[float, float]] = {}
    async with herald(url, dispatcher_enabled="true") as (client, _):
        await create_webhooks(client, [receiver.url("/lat")])
        for i in range(count):
            event = make_event(i)
            before = time.monotonic()
            (await client.post("/api/v1/events", json=event)).raise_for_status()
            sent[event["uuid"]] = (before, time.monotonic())
            await asyncio.sleep(0.02)
        stats = await wait_for_count(receiver, "/lat", count, timeout_s=30)
    arrivals: dict[str, float] = stats["arrivals"]
    from_request = sorted((arrivals[uid] - t0) * 1000 for uid, (t0, _) in sent.items())
    from_answer = sorted((arrivals[uid] - t1) * 1000 for uid, (_, t1) in sent.items())
    return from_request, from_answer


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


async def main(args: argparse.Namespace) -> None:
    receiver = Receiver()
    try:
        await receiver.start()
        async with Databases() as dbs:
            subs = args.subscribers
            server = make_url(dbs.admin_url).host or "embedded"
            print(f"receiver on 127.0.0.1:{receiver.port}; database server {server}")
            if "throughput" in args.scenarios:
                paths = [f"/fast{i}" for i in range(subs)]
                rate, cpu_us, pg_us = await drain(dbs, receiver, paths, args.events, "/fast")
                print(
                    f"throughput: {subs} webhooks x {args.events:,} events: {rate:,.0f} deliveries/s "
                    f"(CPU per delivery: herald {cpu_us:.0f} us, postgres {pg_us:.0f} us)"
                )
            if "steady" in args.scenarios:
                print("steady:", await steady(dbs, receiver, subs, args.steady_rate, args.steady_seconds))
            if "latency" in args.scenarios:
                from_request, from_answer = await latency(dbs, receiver, args.latency_events)
                print(
                    f"idle latency over {len(from_request)} events: request sent -> received "
                    f"p50 {statistics.median(from_request):.1f} ms, p99 {pct(from_request, 0.99):.1f} ms; "
                    f"202 received -> received p50 {statistics.median(from_answer):.1f} ms, "
                    f"p99 {pct(from_answer, 0.99):.1f} ms"
                )
            if "hanging" in args.scenarios:
                # Alternated rounds: the machine's other load drifts; medians compare like with like.
                solo_runs, beside_runs = [], []
                for _ in range(args.rounds):
                    solo_runs.append(await drain(dbs, receiver, ["/fast0"], args.hang_events, "/fast"))
                    beside_runs.append(
                        await drain(dbs, receiver, ["/fast0", "/hang"], args.hang_events, "/fast")
                    )
                solo = statistics.median(run[0] for run in solo_runs)
                with_hang = statistics.median(run[0] for run in beside_runs)
                cpu_solo = statistics.median(run[1] for run in solo_runs)
                cpu_beside = statistics.median(run[1] for run in beside_runs)
                pairs = ", ".join(
                    f"{a[0]:,.0f}/{b[0]:,.0f}" for a, b in zip(solo_runs, beside_runs, strict=True)
                )
                print(
                    f"hanging: healthy webhook alone {solo:,.0f}/s, beside a hanging one {with_hang:,.0f}/s "
                    f"({with_hang / solo:.0%} of solo; medians of {args.rounds} alternated rounds: {pairs}); "
                    f"herald CPU per healthy delivery {cpu_solo:.0f} us alone, {cpu_beside:.0f} us beside"
                )
    finally:
        receiver.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events of the throughput backlog")
    parser.add_argument("--subscribers", type=int, default=4, help="webhooks every event goes to")
    parser.add_argument(
        "--steady-rate", type=int, default=2_500, help="deliveries/s offered in the steady run"
    )
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--hang-events", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated solo/beside rounds of the hanging run"
    )
    parser.add_argument(
        "--scenarios",
        default="throughput,steady,latency,hanging",
        help="comma list of throughput, steady, latency, hanging",
    )
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "receiver":
        serve_receiver(int(sys.argv[2]))
    else:
        asyncio.run(main(parse_args()))
