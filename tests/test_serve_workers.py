"""``herald serve --workers N``: N real processes behind one port on 127.0.0.1, one database."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.db import EmbeddedPostgres
from tests.support.app import TEST_SECRETS_KEY
from tests.support.event_samples import sample_event
from tests.support.postgres import PgServer
from tests.support.process import (
    HERALD_BIN,
    connection_holders,
    free_port,
    herald_env,
    is_running,
    wait_ready,
    worker_pids,
)

# Processes or a PostgreSQL of their own, started and stopped: seconds each.
pytestmark = pytest.mark.slow

# Spawned workers each import the whole application: slow on a loaded machine.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
# New connections are handed to whichever worker accepts first; enough of them reach both.
MAX_CONNECTIONS = 60


def serve(port: int, env: dict[str, str], cwd: Path, workers: int = 2) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(HERALD_BIN), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def started_workers(process: subprocess.Popen[str], count: int) -> set[int]:
    async with asyncio.timeout(START_TIMEOUT_S):
        while len(pids := worker_pids(process.pid)) < count:
            await asyncio.sleep(0.1)
    return pids


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the supervisor and return its output once it has exited."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=STOP_TIMEOUT_S)
    return output


async def test_two_workers_share_the_port_and_the_database_each_with_its_dispatcher(
    pg: PgServer, tmp_path: Path
) -> None:
    empty = await pg.create_database()  # never migrated: the supervisor migrates it, once
    port = free_port()
    env = herald_env(empty, HERALD_DISPATCHER_ENABLED="true", HERALD_MIGRATE_ON_START="true")
    process = serve(port, env, tmp_path)
    clients: list[httpx.AsyncClient] = []
    try:
        await wait_ready(port, process, timeout_s=START_TIMEOUT_S)
        workers = await started_workers(process, 2)
        assert len(workers) == 2
        # Each client keeps its connection, so the worker holding it answered its request.
        ingested: list[str] = []
        while connection_holders(port, workers) != workers and len(clients) < MAX_CONNECTIONS:
            client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
            clients.append(client)
            event = sample_event("project:created")
            response = await client.post("/api/v1/events", json=event)
            assert response.status_code == 202, response.text
            ingested.append(event["uuid"])
        assert connection_holders(port, workers) == workers
        # Whichever worker took an event, every worker reads it from the one database.
        for client in clients:
            for uuid in (ingested[0], ingested[-1]):
                assert (await client.get(f"/api/v1/events/{uuid}")).status_code == 200
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["dispatcher"] == "ok"
    finally:
        for client in clients:
            await client.aclose()
        output = stop(process)
    assert process.returncode == 0, output[-2000:]
    assert not any(is_running(pid) for pid in workers)
    assert output.count("dispatcher started") == 2
    assert output.count("dispatcher stopped") == 2
    assert output.count("herald started") == 2
    assert output.count("Running upgrade  -> 0001") == 1


@pytest.fixture
def short_data_dir() -> Iterator[Path]:
    # PostgreSQL's unix socket path must stay under 107 bytes: pytest's tmp_path can be longer.
    data_dir = Path(tempfile.mkdtemp(prefix="hw", dir="/tmp"))
    yield data_dir
    shutil.rmtree(data_dir, ignore_errors=True)


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


async def test_workers_on_the_embedded_database_start_it_once_and_stop_it_after_them(
    short_data_dir: Path,
) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    env |= {
        "HERALD_DATA_DIR": str(short_data_dir),
        "HERALD_SECRETS_KEYS": TEST_SECRETS_KEY,
        "HERALD_DISPATCHER_ENABLED": "false",
    }
    process = serve(port, env, short_data_dir)
    try:
        await wait_ready(port, process, timeout_s=START_TIMEOUT_S)
        workers = await started_workers(process, 2)
        postmaster = postmaster_pid(short_data_dir)
        assert postmaster is not None
        assert is_running(postmaster)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            event = sample_event("project:created")
            assert (await client.post("/api/v1/events", json=event)).status_code == 202
            assert (await client.get(f"/api/v1/events/{event['uuid']}")).status_code == 200
    finally:
        output = stop(process)
        if postmaster_pid(short_data_dir) is not None:  # the test failed: leave no server behind
            leftover = EmbeddedPostgres(short_data_dir)
            leftover.start()
            leftover.stop()
    assert process.returncode == 0, output[-2000:]
    assert output.count("embedded PostgreSQL ready") == 1
    assert not any(is_running(pid) for pid in workers)
    assert not is_running(postmaster)
    # The workers had finished when PostgreSQL was stopped.
    assert output.rindex("herald stopping") < output.index("embedded PostgreSQL released")
