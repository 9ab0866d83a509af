"""Nothing is lost: SIGKILL and SIGTERM of a real ``herald serve``, two dispatchers on one database,
and the wake-up listener across a PostgreSQL restart (on a private embedded server)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from service import migrations
from service.db import EmbeddedPostgres
from service.delivery.dispatcher import Dispatcher
from tests.support.api import create_webhook, ingest, ingest_many
from tests.support.app import AppFactory, make_settings, running_app
from tests.support.db import FAST, eventually, wait_for_statuses
from tests.support.event_samples import sample_event
from tests.support.process import free_port, herald_env, wait_ready
from tests.support.receiver import Receiver, Reply, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@contextmanager
def herald_process(
    database_url: str, tmp_path: Path, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``herald serve`` in a subprocess (dispatcher on) against the test database."""
    port = free_port()
    env = herald_env(database_url) | {
        "HERALD_DISPATCHER_ENABLED": "true",
        "HERALD_ALLOW_PRIVATE_DESTINATIONS": "true",
        "HERALD_POLL_INTERVAL_SECONDS": "0.05",
        "HERALD_LEASE_SECONDS": "1",
        "HERALD_DELIVERY_TIMEOUT_SECONDS": "0.9",
        **{f"HERALD_{key.upper()}": value for key, value in settings.items()},
    }
    log = (tmp_path / f"herald-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


async def _wait_exit(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    async with asyncio.timeout(timeout_s):
        while process.poll() is None:
            await asyncio.sleep(0.02)
    return process.returncode


async def test_sigkill_mid_run_loses_nothing(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection, database_url: str, tmp_path: Path
) -> None:
    receiver.reply("/hook", then=Reply(200, delay_s=0.3))
    async with app_factory() as herald:  # dispatcher off: the events wait for the subprocess
        hook = await create_webhook(herald.client, receiver.url())
        events = await ingest_many(herald.client, 40)
    with herald_process(database_url, tmp_path, delivery_per_subscriber_concurrency="8") as (process, port):
        await wait_ready(port, process)
        await receiver.wait_for(8)
        process.send_signal(signal.SIGKILL)
        await _wait_exit(process)
    in_flight = await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'delivering'")
    assert in_flight > 0  # killed with attempts in flight: only their leases remember them
    receiver.reply("/hook", then=Reply(200))
    async with app_factory(**FAST | {"lease_seconds": 1}):
        await wait_for_statuses(db, {"delivered": 40}, hook["uuid"])
    assert {r.webhook_id for r in receiver.requests} == set(events)


async def test_sigterm_under_load_hands_unfinished_deliveries_back(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection, database_url: str, tmp_path: Path
) -> None:
    receiver.reply("/hook", then=Reply(200, delay_s=0.5))
    async with app_factory() as herald:
        hook = await create_webhook(herald.client, receiver.url())
        events = await ingest_many(herald.client, 60)
    settings = {
        "delivery_per_subscriber_concurrency": "8",
        "shutdown_grace_seconds": "0.1",
        "lease_seconds": "30",
    }
    with herald_process(database_url, tmp_path, **settings) as (process, port):
        await wait_ready(port, process)
        await receiver.wait_for(8)
        process.send_signal(signal.SIGTERM)
        assert await _wait_exit(process) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    # Nothing left leased: every delivery is delivered, or pending and due (handed back).
    rows = await db.fetch(
        "SELECT status, lease_token, next_attempt_at <= now() AS due FROM deliveries "
        "WHERE subscriber_kind = 'webhook'"
    )
    assert {row["status"] for row in rows} <= {"delivered", "pending"}
    assert all(row["lease_token"] is None for row in rows)
    assert all(row["due"] for row in rows if row["status"] == "pending")
    assert sum(row["status"] == "pending" for row in rows) >= 8  # the ones in flight were handed back
    receiver.reply("/hook", then=Reply(200))
    async with app_factory(**FAST | {"lease_seconds": 30}):
        await wait_for_statuses(db, {"delivered": 60}, hook["uuid"])
    assert {r.webhook_id for r in receiver.requests} == set(events)


async def test_two_dispatchers_on_one_database_deliver_every_event_exactly_once(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    receiver.reply("/hook", then=Reply(200, delay_s=0.005))
    # The per-subscriber bound holds across both (one of them could take all of it): the process
    # bound is what makes each take a share.
    settings = FAST | {"delivery_concurrency": 4, "delivery_per_subscriber_concurrency": 16}
    async with app_factory(**settings) as first, app_factory(**settings) as second:
        await create_webhook(first.client, receiver.url())
        events = await ingest_many(second.client, 300)
        await wait_for_statuses(db, {"delivered": 300}, timeout_s=30)
        dispatchers = [app.state.dispatcher for app in (first, second)]
        claimed = [d.stats().counters.get("claimed", 0) for d in dispatchers if isinstance(d, Dispatcher)]
    assert sorted(r.webhook_id for r in receiver.requests) == sorted(events)
    assert all(count > 0 for count in claimed), claimed
    assert sum(claimed) == 300


async def test_listener_survives_a_postgresql_restart(receiver: Receiver) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="hrs", dir="/tmp"))
    server = EmbeddedPostgres(data_dir)
    url = await server.astart()
    try:
        await migrations.upgrade(url)
        # A poll far longer than the test: only NOTIFY can make deliveries this quick.
        settings = make_settings(url, **FAST | {"poll_interval_seconds": 60})
        async with running_app(settings) as herald:
            dispatcher = herald.state.dispatcher
            assert isinstance(dispatcher, Dispatcher)
            await create_webhook(herald.client, receiver.url())
            await ingest(herald.client)
            await receiver.wait_for(1, timeout_s=5)
            await server.astop()
            await server.astart()

            async def relistening() -> bool:
                stats = dispatcher.stats()
                return stats.listener_connected and stats.listener_connections >= 2

            await eventually(relistening, timeout_s=15)
            async with asyncio.timeout(15):
                while True:  # the app's pool may need a moment to give up its dead connections
                    response = await herald.client.post(
                        "/api/v1/events", json=sample_event("project:created")
                    )
                    if response.status_code == 202:
                        break
                    await asyncio.sleep(0.2)
            await receiver.wait_for(2, timeout_s=5)
            assert dispatcher.is_alive()
    finally:
        await server.astop()
