"""``herald serve``: the application under uvicorn, in this process or in N worker processes.

One process (the default) runs everything in its lifespan: the embedded PostgreSQL, the
migrations, the API and the dispatcher. With ``--workers N`` this process is a supervisor: it
starts the embedded PostgreSQL (when ``HERALD_DATABASE_URL`` is unset) and migrates, once,
binds the port, then runs uvicorn's process manager, which spawns N workers sharing that
socket and replaces one that dies. Each worker is a whole Herald (API, dispatcher, background
jobs) on the same database, coordinated as replicas are (docs/operations.md, "Several
replicas on one database"). On SIGTERM or SIGINT the workers stop first, each as one process
does, then the supervisor stops the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from functools import partial
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from service import migrations
from service.db import command_database
from service.logs import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.config import Settings

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
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "log_config": None,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "proxy_headers": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds) + 5,
    }


def serve_in_process(settings: Settings, host: str, port: int) -> int:
    """Serve in this process; the lifespan starts (and stops) the embedded PostgreSQL if needed."""
    from service.main import create_app

    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))
    return 0


def worker_app(settings: Settings, database_url: str) -> FastAPI:
    """The application of one worker (uvicorn calls it in the new process): the database is the
    supervisor's, already migrated."""
    configure_logging(settings.log_format)
    from service.main import create_app

    app = create_app(settings.model_copy(update={"migrate_on_start": False}), database_url=database_url)
    tune_garbage_collector()
    return app


def serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """Supervise ``workers`` processes behind one port; 3 if a worker could not start."""
    # Until uvicorn's manager takes the signals over, a SIGTERM unwinds like Ctrl-C, so an
    # embedded PostgreSQL started meanwhile is stopped rather than left running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with command_database(settings) as database_url:
        if settings.migrate_on_start:
            asyncio.run(migrations.upgrade(database_url))
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
