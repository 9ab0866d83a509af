"""``herald serve`` in a subprocess for the client's tests, on a database of its own.

With ``HERALD_DATABASE_URL`` set, Herald gets a fresh database created on that server (and
dropped at the end); without it, Herald starts its embedded PostgreSQL in a temporary
directory. API keys are configured, so that auth errors can be tested, and private
destinations are allowed, so that webhooks reach the receivers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class HeraldServer:
    """Where the test Herald listens, and its two API keys."""

    base_url: str
    admin_key: str
    ingest_key: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _database_url(admin_url: str, name: str) -> str:
    return urlunsplit(urlsplit(_libpq_url(admin_url))._replace(path=f"/{name}"))


def _admin_sql(admin_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(_libpq_url(admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"herald serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"herald serve was not ready after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _environment(server: HeraldServer, workdir: Path, database_url: str | None) -> dict[str, str]:
    # Nothing of the developer's own Herald settings leaks in.
    env = {name: value for name, value in os.environ.items() if not name.startswith("HERALD_")}
    env |= {
        "HERALD_API_KEYS": f"admin:{server.admin_key},ingest:{server.ingest_key}",
        "HERALD_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HERALD_DATA_DIR": str(workdir / "data"),
        "HERALD_TELEMETRY_DISABLED": "true",
        "HERALD_RETRY_SCHEDULE": "1s,1s",
        "HERALD_SHUTDOWN_GRACE_SECONDS": "1",
    }
    if database_url:
        env["HERALD_DATABASE_URL"] = database_url
    return env


@contextmanager
def running_herald() -> Iterator[HeraldServer]:
    """A Herald serving on a free port of 127.0.0.1 until the block ends."""
    if importlib.util.find_spec("service") is None:
        pytest.fail("the client's tests need Herald: run `uv run pytest clients/python/tests` in a checkout")
    port = free_port()
    server = HeraldServer(f"http://127.0.0.1:{port}", secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    admin_url = os.environ.get("HERALD_DATABASE_URL")
    database = f"herald_client_{uuid.uuid4().hex[:12]}"
    # Short path: the embedded PostgreSQL's unix socket path must stay under 107 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="hcl", dir="/tmp"))
    if admin_url:
        _admin_sql(admin_url, f"CREATE DATABASE {database}")
    env = _environment(server, workdir, _database_url(admin_url, database) if admin_url else None)
    log = workdir / "herald.log"
    command = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        # Run in the work directory: no .env of a checkout is read.
        with log.open("wb") as output:
            process = subprocess.Popen(command, env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(server.base_url, process, log)
            yield server
        finally:
            _stop(process)
    finally:
        if admin_url:
            _admin_sql(admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)
