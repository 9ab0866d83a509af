"""Test fixtures: a real PostgreSQL, a migrated template database, one fresh database per test.

With ``HERALD_DATABASE_URL`` set, databases are created on that server; without it, one embedded
PostgreSQL (the same wheel Herald uses) is started for the session. The schema always comes from
the Alembic migrations: a template database is migrated once, then each test gets
``CREATE DATABASE ... TEMPLATE`` (fast, and real commits that other connections can see).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from service import migrations
from service.db import EmbeddedPostgres, asyncpg_dsn
from tests.support.app import AppFactory, RunningApp, make_settings, running_app
from tests.support.postgres import PgServer


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("HERALD_DATABASE_URL")
    if url:
        yield url
        return
    # Short path: PostgreSQL's unix socket path must stay under 107 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="hpg", dir="/tmp"))
    server = EmbeddedPostgres(data_dir)
    yield server.start()
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg(pg_admin_url: str) -> AsyncIterator[PgServer]:
    server = PgServer(admin_url=pg_admin_url, created=[], ephemeral=not os.environ.get("HERALD_DATABASE_URL"))
    yield server
    if not server.ephemeral:
        limit = asyncio.Semaphore(4)

        async def drop(name: str) -> None:
            async with limit:
                await server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

        await asyncio.gather(*(drop(name) for name in server.created))


@pytest.fixture(scope="session")
async def template_database(pg: PgServer) -> str:
    """Name of a database migrated to head, used as the template of every test database."""
    url = await pg.create_database()
    await migrations.upgrade(url)
    return make_url(url).database or ""


# Tables whose rows come from the migrations; every other table is emptied between tests.
_SEEDED_TABLES = ("alembic_version", "event_types", "installation", "subscribers", "subscriptions")
# Emptying a table with DELETE costs next to nothing when it holds a few rows, where TRUNCATE
# makes new files for the table and each of its indexes (~50-150 ms a test, most of a test's
# set-up): only a table grown past this is truncated, so no test inherits a bloated one.
_TRUNCATE_ABOVE_BYTES = 256 * 1024
_RESET_SQL = """
DO $$
DECLARE
    grown text;
    name text;
BEGIN
    SELECT string_agg(oid::regclass::text, ', ') INTO grown
    FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> ALL($1)
        AND pg_total_relation_size(oid) > $2;
    IF grown IS NOT NULL THEN
        EXECUTE 'TRUNCATE ' || grown || ' CASCADE';
    END IF;
    -- Every row goes: no foreign key needs checking, no trigger (NOTIFY) needs firing.
    SET LOCAL session_replication_role = replica;
    FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> ALL($1) LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    SET LOCAL session_replication_role = origin;
    DELETE FROM subscribers WHERE kind <> 'analytics';
    DELETE FROM event_types WHERE custom;
    -- A test may have started Herald with other secrets keys: the next one writes its own canary.
    UPDATE installation SET secrets_canary = NULL;
    -- As RESTART IDENTITY would: the sequences of the emptied tables start again.
    PERFORM setval(s.seqrelid, s.seqstart, false)
    FROM pg_sequence s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
        AND d.deptype IN ('a', 'i')
    JOIN pg_class t ON t.oid = d.refobjid
    WHERE t.relname <> ALL($1);
END $$;
"""


@pytest.fixture(scope="session")
def clean_databases() -> list[str]:
    """Databases emptied after use, handed to the next test (much cheaper than a new one)."""
    return []


async def _reset(url: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("SET lock_timeout = '2s'")
        seeded = ", ".join(f"'{name}'" for name in _SEEDED_TABLES)
        sql = _RESET_SQL.replace("$1", f"ARRAY[{seeded}]::name[]").replace("$2", str(_TRUNCATE_ABOVE_BYTES))
        await conn.execute(sql)
    except (asyncpg.PostgresError, OSError):
        return False  # something still holds it: leave it to the final drop
    finally:
        await conn.close()
    return True


async def _take_database(pg: PgServer, template_database: str, clean_databases: list[str]) -> str:
    return clean_databases.pop() if clean_databases else await pg.create_database(template=template_database)


@pytest.fixture(scope="module")
async def module_database_url(
    pg: PgServer, template_database: str, clean_databases: list[str]
) -> AsyncIterator[str]:
    """The database of a module whose tests share one app (``pytest.mark.shared_app``)."""
    url = await _take_database(pg, template_database, clean_databases)
    yield url
    if await _reset(url):
        clean_databases.append(url)


@pytest.fixture
async def own_database_url(
    pg: PgServer, template_database: str, clean_databases: list[str]
) -> AsyncIterator[str]:
    url = await _take_database(pg, template_database, clean_databases)
    yield url
    if await _reset(url):
        clean_databases.append(url)


@pytest.fixture
async def shared_database_url(module_database_url: str) -> AsyncIterator[str]:
    yield module_database_url
    assert await _reset(module_database_url), "the shared app's database could not be emptied"


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database with no data but the migrations' rows, for this test alone (in a
    ``shared_app`` module: the module's database, under its running app, emptied after each test)."""
    # A plain function: pytest-asyncio cannot set up an async fixture from inside another one.
    shared = request.node.get_closest_marker("shared_app") is not None
    url: str = request.getfixturevalue("shared_database_url" if shared else "own_database_url")
    return url


@pytest.fixture
def app_factory(database_url: str) -> AppFactory:
    """Start the app on this test's database with setting overrides: ``async with app_factory(x=1)``."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[RunningApp]:
        return running_app(make_settings(database_url, **overrides))

    return factory


@pytest.fixture(scope="module")
async def shared_herald(module_database_url: str) -> AsyncIterator[RunningApp]:
    """One app with default test settings for a whole module (``pytest.mark.shared_app``)."""
    async with running_app(make_settings(module_database_url)) as running:
        yield running


@pytest.fixture
async def own_herald(app_factory: AppFactory) -> AsyncIterator[RunningApp]:
    async with app_factory() as running:
        yield running


@pytest.fixture
def herald(request: pytest.FixtureRequest) -> RunningApp:
    """The app with default test settings (dispatcher off, telemetry off).

    In a module marked ``shared_app`` (tests that only call the API of a default app, and hold
    nothing of it but what the database holds), one app serves every test: starting one per
    test was most of the suite's set-up time. Its database is emptied after each test.
    """
    if request.node.get_closest_marker("shared_app") is not None:
        request.getfixturevalue("database_url")  # emptied after this test
        shared: RunningApp = request.getfixturevalue("shared_herald")
        shared.client.cookies.clear()  # a session or portal cookie is one test's own
        return shared
    own: RunningApp = request.getfixturevalue("own_herald")
    return own


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to this test's database, for assertions."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()
