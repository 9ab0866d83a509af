"""``herald serve``: the application under uvicorn, in this process or in N worker processes.

Either way the command first makes the database ready: it starts the embedded PostgreSQL
(when ``HERALD_DATABASE_URL`` is unset) and applies the migrations, once, and stops that
PostgreSQL last, after serving. In one process (the default) this runs in a thread while the
application is imported, since starting PostgreSQL is mostly waiting on ``pg_ctl``, and the
app then serves on that database. With ``--workers N`` this process is a supervisor: once the
database is ready it binds the port and runs uvicorn's process manager, which spawns N workers
sharing that socket and replaces one that dies. Each worker is a whole Herald (API,
dispatcher, background jobs) on the same database, coordinated as replicas are
(docs/operations.md, "Several replicas on one database"). On SIGTERM or SIGINT the workers
stop first, each as one process does, then the supervisor stops the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from service.logs import configure_logging

# Imported where used, so that the database is on its way before the bulk of the imports.
if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.config import Settings
    from service.db import EmbeddedPostgres

logger = logging.getLogger(__name__)

# uvicorn's exit code for "the application could not start" (uvicorn.config.STARTUP_FAILURE).
STARTUP_FAILURE = 3
# Young-generation size of the cyclic garbage collector (CPython's default: 700 allocations).
GC_YOUNG_THRESHOLD = 10_000
# How long a worker may take to answer the supervisor's health ping before it is replaced. The
# ping is answered by a thread started before the application is imported, so this bounds only
# the interpreter's start (seconds on a loaded machine), not Herald's own start-up.
WORKER_HEALTHCHECK_TIMEOUT_S = 30


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector from doubling the CPU of big requests.

    A 1000-event batch holds some 10^5 containers for the length of the request. With CPython's
    default thresholds they reach the oldest generation and set off full collections, each of
    which walks every object of the process (~80 ms per batch, measured with bench/). Start-up
    objects are frozen out of the collector's sight and the young generation is made larger.
    The collector is switched back on if :func:`pause_garbage_collector` had paused it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    gc.enable()


def pause_garbage_collector() -> None:
    """No cyclic collection while the application is imported, until
    :func:`tune_garbage_collector`: importing it sets off some 370 collections that find
    almost nothing to free (~1,900 objects) and take 8 % of the import."""
    gc.disable()


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    from service.http_limits import HttpLimits, LimitedHttpToolsProtocol

    # uvicorn's httptools protocol with bounds on request heads and slow clients; a partial of a
    # module-level class, so that it pickles into the spawned workers of ``--workers``.
    limits = HttpLimits(body_timeout_s=settings.body_timeout_seconds)
    return {
        "log_config": None,
        "loop": "uvloop",
        "http": partial(LimitedHttpToolsProtocol, limits=limits),
        "lifespan": "on",
        # Herald applies X-Forwarded-For/-Proto/-Host itself, Host included, from the peers
        # HERALD_FORWARDED_ALLOW_IPS trusts (HERALD_PROXY_HEADERS, service/api/forwarded.py).
        "proxy_headers": False,
        "ws": "none",  # Herald serves no WebSocket: spares importing a WebSocket library
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds) + 5,
    }


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived outside uvicorn, or was handed on by uvicorn after its shutdown."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def prepared_database(settings: Settings) -> Iterator[Future[str]]:
    """The URL of the database to serve on, as a future: in a thread, the embedded PostgreSQL
    is started if needed and the migrations are applied if ``HERALD_MIGRATE_ON_START``.

    Leaving the block stops that PostgreSQL (unless another process still uses it). A SIGTERM
    or SIGINT unwinds the block, whether it came before uvicorn took the signals over or was
    handed on by uvicorn once it had shut down, and then ends the process as that signal does.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stopped)
    started: list[EmbeddedPostgres] = []

    def prepare() -> str:
        from service import migrations
        from service.db import EmbeddedPostgres

        url = settings.database_url
        if url is None:
            started.append(EmbeddedPostgres(settings.data_dir))
            url = started[0].start()
        if settings.migrate_on_start:
            asyncio.run(migrations.upgrade(url))
        return url

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="herald-start") as pool:
            future = pool.submit(prepare)
            try:
                yield future
            finally:
                wait([future])  # pg_ctl cannot be interrupted: let it finish, then stop the server
                for embedded in started:
                    embedded.stop()
    except Stopped as stopped:
        signal.signal(stopped.signum, signal.SIG_DFL)
        signal.raise_signal(stopped.signum)
        raise SystemExit(128 + stopped.signum) from None  # the signal is blocked in this process


def _database_url(database: Future[str]) -> str | None:
    """The prepared database's URL; None, logged, if it could not be made ready."""
    try:
        return database.result()
    except Exception:
        logger.exception("herald could not start: the database could not be made ready")
        return None


def _serving_settings(settings: Settings) -> Settings:
    # The database is ready when the app starts: its lifespan neither migrates nor starts one.
    return settings.model_copy(update={"migrate_on_start": False})


def serve_in_process(settings: Settings, host: str, port: int) -> int:
    """Serve in this process, the database made ready meanwhile."""
    with prepared_database(settings) as database:
        pause_garbage_collector()
        import uvicorn

        from service.main import create_app

        database_url = _database_url(database)
        if database_url is None:
            return STARTUP_FAILURE
        app = create_app(_serving_settings(settings), database_url=database_url)
        tune_garbage_collector()
        uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))
    return 0


def worker_app(settings: Settings, database_url: str) -> FastAPI:
    """The application of one worker (uvicorn calls it in the new process): the database is the
    supervisor's, already migrated."""
    configure_logging(settings.log_format)
    pause_garbage_collector()
    from service.main import create_app

    app = create_app(_serving_settings(settings), database_url=database_url)
    tune_garbage_collector()
    return app


def serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """Supervise ``workers`` processes behind one port; 3 if a worker could not start."""
    with prepared_database(settings) as database:
        import uvicorn
        from uvicorn.supervisors import Multiprocess

        database_url = _database_url(database)
        if database_url is None:
            return STARTUP_FAILURE
        config = uvicorn.Config(
            partial(worker_app, settings, database_url),
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
            **_uvicorn_options(settings),
        )
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        failed = any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes)
    return STARTUP_FAILURE if failed else 0
