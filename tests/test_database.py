"""The database layer: embedded PostgreSQL, migrations, restarts, concurrent start-ups."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service import migrations
from service.db import (
    DatabaseUnavailable,
    async_database_url,
    asyncpg_dsn,
    create_engine,
    driver_connection,
    read_session,
    session_factory,
)
from service.delivery.connection import DedicatedConnection
from tests.support.app import make_settings, running_app
from tests.support.event_samples import sample_event
from tests.support.postgres import PgServer


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_database_urls_of_both_spellings_are_accepted(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


def test_a_non_postgresql_url_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql"):
        async_database_url("mysql://u@h/d")


@pytest.mark.slow
async def test_embedded_postgres_start_ingest_read_and_restart_keeps_data(tmp_path: Path) -> None:
    """No HERALD_DATABASE_URL: the app starts its own PostgreSQL, migrates, and keeps data."""
    data_dir = Path("/tmp") / f"hemb{tmp_path.name[-12:]}"  # short: unix socket paths are limited
    settings = make_settings(None, data_dir=data_dir, migrate_on_start=True)
    body = sample_event("project:created")
    async with running_app(settings) as running:
        assert running.state.embedded is not None
        response = await running.client.post("/api/v1/events", json=body)
        assert response.status_code == 202
    try:
        async with running_app(settings) as running:
            read = await running.client.get(f"/api/v1/events/{body['uuid']}")
            assert read.status_code == 200
            assert read.json()["event"]["project"]["name"] == body["project"]["name"]
            assert (await running.client.get("/health/ready")).status_code == 200
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_restart_keeps_data(database_url: str) -> None:
    body = sample_event("project:cron-job:run:pipeline-run:failed")
    async with running_app(make_settings(database_url)) as running:
        assert (await running.client.post("/api/v1/events", json=body)).status_code == 202
    async with running_app(make_settings(database_url)) as running:
        read = await running.client.get(f"/api/v1/events/{body['uuid']}")
        assert read.status_code == 200


async def test_migrations_downgrade_and_upgrade_round_trip(pg: PgServer) -> None:
    url = await pg.create_database()
    await migrations.upgrade(url)
    await asyncio.to_thread(migrations.downgrade_sync, url, "base")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {row["tablename"] for row in tables} <= {"alembic_version"}
    finally:
        await conn.close()
    await migrations.upgrade(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        catalog = "SELECT count(*) FROM event_types WHERE name <> 'ping' AND name NOT LIKE 'herald:%'"
        assert await conn.fetchval(catalog) == 58
        assert await conn.fetchval("SELECT count(*) FROM event_types WHERE name LIKE 'herald:%'") == 7
        assert await conn.fetchval("SELECT count(*) FROM event_types WHERE name = 'ping'") == 1
        assert await conn.fetchval("SELECT count(*) FROM installation") == 1
        assert await conn.fetchval("SELECT count(*) FROM subscribers WHERE kind = 'analytics'") == 1
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == migrations.head_revision()
    finally:
        await conn.close()


@pytest.mark.slow
async def test_replicas_migrating_at_once_are_serialized(pg: PgServer) -> None:
    """Three `herald migrate` processes at once: one migrates, the others wait and find head."""
    url = await pg.create_database()
    env = {**os.environ, "HERALD_DATABASE_URL": url}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "migrate", env=env, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(proc.communicate() for proc in procs))
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err.decode()[-500:] for _, err in results]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == migrations.head_revision()
        assert await conn.fetchval("SELECT count(*) FROM subscribers WHERE kind = 'analytics'") == 1
        assert await conn.fetchval("SELECT count(*) FROM event_types") == 58 + 1 + 7  # catalog, ping, herald:
    finally:
        await conn.close()


async def test_installation_identity_is_stable_across_restarts(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as running:
        first = running.state.installation
    async with running_app(make_settings(database_url)) as running:
        second = running.state.installation
    assert first.installation_id == second.installation_id
    assert first.anonymizer("x") == second.anonymizer("x")


async def test_a_database_that_refuses_the_connection_is_unavailable_not_an_error(database_url: str) -> None:
    # A server that answers but refuses (here: no such database), as during a shutdown or a restart.
    engine = create_engine(str(make_url(database_url).set(database="herald_no_such_database")))
    try:
        with pytest.raises(DatabaseUnavailable):
            async with driver_connection(engine, deadline_s=5.0):
                pass
    finally:
        await engine.dispose()


@pytest.fixture
async def one_connection_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds a single connection: a checkout after a failure must get a new one."""
    engine = create_engine(database_url, pool_size=1)
    yield engine
    await engine.dispose()


async def test_a_driver_connection_broken_mid_use_is_thrown_away(one_connection_engine: AsyncEngine) -> None:
    with pytest.raises(asyncpg.PostgresConnectionError):  # answered 503 (service.main)
        async with driver_connection(one_connection_engine, deadline_s=5.0) as conn:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    # The pool's only connection was replaced: the next checkout works.
    async with driver_connection(one_connection_engine, deadline_s=5.0) as conn:
        assert await conn.fetchval("SELECT 1") == 1


async def test_the_deadline_cuts_a_hanging_statement_and_frees_the_connection(
    one_connection_engine: AsyncEngine,
) -> None:
    with pytest.raises(TimeoutError):
        async with driver_connection(one_connection_engine, deadline_s=0.3) as conn:
            await conn.execute("SELECT pg_sleep(10)")
    async with driver_connection(one_connection_engine, deadline_s=5.0) as conn:
        assert await conn.fetchval("SELECT 2") == 2


async def test_a_read_session_gives_up_at_its_deadline_and_frees_the_connection(
    one_connection_engine: AsyncEngine,
) -> None:
    # As on a frozen server: the pooled connection is there, the answer never comes.
    sessions = session_factory(one_connection_engine)
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # answered 503 (service.main)
        async with read_session(sessions, deadline_s=0.3) as session:
            await session.execute(text("SELECT pg_sleep(10)"))
    assert time.monotonic() - started < 3.0
    async with read_session(sessions) as session:
        assert (await session.execute(text("SELECT 3"))).scalar_one() == 3


async def test_herald_connections_run_without_jit(database_url: str) -> None:
    # A claim's cost estimate passes jit_above_cost on a large queue; compiling it cost ~140 ms.
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW jit"))).scalar() == "off"
    finally:
        await engine.dispose()
    claims = DedicatedConnection(database_url, "herald-claims")
    try:
        async with claims.use() as conn:
            assert await conn.fetchval("SHOW jit") == "off"
    finally:
        await claims.close()
