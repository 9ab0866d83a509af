"""Schemathesis against the live OpenAPI schema: no 5xx for any input, responses match the schema.

The schema is Herald's own (built without a database, like ``herald openapi``); requests go to a
real Herald served by uvicorn on 127.0.0.1 (in a thread of this process) on a fresh database,
dispatcher off. The routes that connect out (``.../test``) are excluded, and the name resolver of
the private-destination check is stubbed, so nothing leaves the machine. In the suite: valid data
(what the schema allows, answered as documented), the same examples every run and ten per
operation, about ten seconds; the hostile values (invalid, huge, overflowing) in every input are
``test_hostile_inputs.py``'s walk. ``HERALD_FUZZ_SEED`` explores: negative data too, a new seed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.api.deps import get_resolver
from service.config import Settings
from service.main import create_app
from tests.support.app import make_settings
from tests.support.postgres import PgServer
from tests.support.process import free_port

Operation = APIOperation[Any, Any, Any, Any]

# CI runs the same examples every time; set HERALD_FUZZ_SEED (and more examples) to explore.
MAX_EXAMPLES = int(os.environ.get("HERALD_FUZZ_MAX_EXAMPLES", "10"))
SEED = os.environ.get("HERALD_FUZZ_SEED")
# Negative data cost most of the run (generating invalid events from their schemas: ~20 s of ~30),
# for what the hostile-input walk covers input by input; exploring runs it too.
MODE = "all" if SEED else "positive"


def _openapi() -> dict[str, Any]:
    return create_app(Settings(database_url="postgresql://unused/unused")).openapi()


CONFIG = schemathesis.Config.from_dict(
    {
        **({"seed": int(SEED)} if SEED else {}),
        "generation": {"mode": MODE, "max-examples": MAX_EXAMPLES, "deterministic": not SEED},
        "phases": {"stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG).exclude(path_regex=r"/test$")


async def _unresolvable(host: str, port: int) -> list[str]:
    """Stub resolver: no generated host name is ever looked up on the network."""
    raise OSError(f"{host} does not resolve (stub)")


@pytest.fixture(scope="module")
async def fuzz_database_url(pg: PgServer, template_database: str) -> str:
    return await pg.create_database(template=template_database)


@pytest.fixture(scope="module")
def base_url(fuzz_database_url: str) -> Iterator[str]:
    """Herald served by uvicorn on a free loopback port, in a thread with its own event loop."""
    app = create_app(make_settings(fuzz_database_url, allow_private_destinations=False))
    app.dependency_overrides[get_resolver] = lambda: _unresolvable
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", loop="asyncio")
    )
    thread = threading.Thread(target=server.run, name="fuzz-herald", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "herald did not start"
        assert time.monotonic() < deadline, "herald did not start in time"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=not SEED,
)
def test_api_never_fails_and_answers_as_documented(case: schemathesis.Case[Operation], base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url, checks=[not_a_server_error, response_schema_conformance], timeout=30
    )


def test_every_operation_is_fuzzed_but_those_that_connect_out() -> None:
    fuzzed = {operation.label for operation in _operations()}
    documented = {f"{method.upper()} {path}" for path, item in _openapi()["paths"].items() for method in item}
    connecting_out = {"POST /api/v1/subscribers/{uuid}/test", "POST /api/v1/subscribers/webhooks/test"}
    assert documented - fuzzed == connecting_out & documented
    assert "POST /api/v1/events" in fuzzed


def _operations() -> list[Operation]:
    return [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
