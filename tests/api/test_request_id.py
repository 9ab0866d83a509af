"""Request ids, last-activity tracking and structured logs (JSON lines; no secrets or payloads)."""

from __future__ import annotations

import io
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from service.logs import JsonFormatter, RequestIdFilter, TextFormatter, request_id_var
from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event
from tests.support.process import HERALD_BIN, free_port, herald_env, wait_ready

CANARY = "CANARY-payload-5b1e"
ADMIN_KEY = "adm-secret-key-9d41"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged (debug and up) while the test runs, as Herald's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_every_response_carries_a_fresh_request_id(herald: RunningApp) -> None:
    ids = set()
    for path in ("/health/live", "/api/v1/events", "/api/v1/events/not-a-uuid", "/nowhere"):
        response = await herald.client.get(path)
        request_id = response.headers["x-request-id"]
        assert len(request_id) == 32
        int(request_id, 16)
        ids.add(request_id)
    assert len(ids) == 4


async def test_a_valid_incoming_request_id_is_kept(herald: RunningApp) -> None:
    for request_id in ("abc-123", "0f8e6a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b", "trace:span.1/x+y=", "x" * 128):
        response = await herald.client.get("/health/live", headers={"x-request-id": request_id})
        assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "new\\nline", "ünïcode", "<script>"])
async def test_an_invalid_incoming_request_id_is_replaced(herald: RunningApp, bad: str) -> None:
    response = await herald.client.get("/health/live", headers=[(b"x-request-id", bad.encode())])
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_even_early_rejections_carry_the_request_id(app_factory: AppFactory) -> None:
    async with app_factory(max_event_bytes=1024, api_keys="admin:k1") as running:
        too_big = await running.client.post(
            "/api/v1/events",
            content=b"x" * 2048,
            headers={"x-request-id": "big-1", "Authorization": "Bearer k1"},
        )
        assert too_big.status_code == 413
        assert too_big.headers["x-request-id"] == "big-1"
        unauthorized = await running.client.get("/api/v1/events", headers={"x-request-id": "anon-1"})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["x-request-id"] == "anon-1"


async def test_an_unhandled_error_is_a_short_500_with_the_request_id(
    herald: RunningApp, json_log: io.StringIO
) -> None:
    async def broken() -> None:
        raise RuntimeError(CANARY)

    herald.app.add_api_route("/api/v1/broken", broken)
    # A client that sees the answer, as a real one would (the default re-raises the app's errors).
    transport = httpx.ASGITransport(app=herald.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
        response = await client.get("/api/v1/broken", headers={"x-request-id": "boom-1"})
        fresh = await client.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["content-type"] == "application/json"
    assert "x-request-id" in response.json()["detail"]
    assert CANARY not in response.text  # the traceback stays in the log
    assert fresh.status_code == 500
    assert len(fresh.headers["x-request-id"]) == 32
    [logged] = [
        line
        for line in lines(json_log)
        if line["message"] == "unhandled error" and line["request_id"] == "boom-1"
    ]
    assert CANARY in str(logged["exception"])
    assert logged["path"] == "/api/v1/broken"


async def test_log_records_of_a_request_carry_its_id(herald: RunningApp, json_log: io.StringIO) -> None:
    await herald.client.get("/api/v1/events", headers={"x-request-id": "req-42"})
    served = [line for line in lines(json_log) if line["message"] == "request served"]
    assert served
    assert served[-1]["request_id"] == "req-42"
    assert served[-1]["path"] == "/api/v1/events"
    assert served[-1]["status"] == 200
    assert request_id_var.get() is None  # nothing leaks out of the request


async def test_last_api_activity_ignores_probes_and_scrapes(herald: RunningApp) -> None:
    state = herald.app.state
    assert state.last_api_activity is None
    for path in ("/health/live", "/health/ready", "/metrics"):
        await herald.client.get(path)
    assert state.last_api_activity is None
    before = time.monotonic()
    await herald.client.get("/api/v1/event-types")
    activity = state.last_api_activity
    assert activity is not None
    assert before <= activity <= time.monotonic()


def test_formatters_add_structured_fields() -> None:
    record = logging.LogRecord("herald.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.delivery = "abc"
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello world"
    assert entry["level"] == "info"
    assert entry["logger"] == "herald.x"
    assert entry["request_id"] == "rid-1"
    assert entry["delivery"] == "abc"
    text = TextFormatter().format(record)
    assert "hello world" in text
    assert "request_id=rid-1" in text


async def test_no_payloads_or_keys_in_info_logs(app_factory: AppFactory, json_log: io.StringIO) -> None:
    async with app_factory(api_keys=f"admin:{ADMIN_KEY}") as running:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        event = sample_event("project:one-off-job:pipeline-run:failed", canary=CANARY)
        assert (await running.client.post("/api/v1/events", json=event, headers=headers)).status_code == 202
        conflicting = {**event, "project": {**event["project"], "name": CANARY + "-2"}}
        assert (
            await running.client.post("/api/v1/events", json=conflicting, headers=headers)
        ).status_code == 409
        bad = {"type": "project:created", "project": {"uuid": "nope", "name": CANARY}}
        assert (await running.client.post("/api/v1/events", json=bad, headers=headers)).status_code == 422
        wrong_key = {"Authorization": f"Bearer {CANARY}-key"}
        assert (await running.client.get("/api/v1/events", headers=wrong_key)).status_code == 401
        # Logs may name the destination's scheme://host, never its path or query.
        webhook = {"name": CANARY, "url": f"http://127.0.0.1:9/{CANARY}?token=s3cr3t"}
        created = await running.client.post("/api/v1/subscribers/webhooks", json=webhook, headers=headers)
        assert created.status_code == 201, created.text
    # The test's own client (httpx) logs its requests; Herald's output is everything else.
    info = [line for line in lines(json_log) if line["level"] != "debug" and line["logger"] != "httpx"]
    assert info  # start/stop at least
    text = orjson.dumps(info).decode()
    for secret in (CANARY, CANARY.lower(), ADMIN_KEY, "s3cr3t"):
        assert secret not in text


@pytest.mark.slow
async def test_serve_on_loopback_without_keys_warns_and_logs_json_lines(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = herald_env(
        database_url, HERALD_MIGRATE_ON_START="true", HERALD_LOG_FORMAT="json", HERALD_API_KEYS=""
    )
    process = subprocess.Popen(
        [str(HERALD_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(port, process)
        event = sample_event("project:created", canary=CANARY)
        response = httpx.post(f"{base}/api/v1/events", json=event, headers={"x-request-id": "serve-1"})
        assert response.status_code == 202
        assert response.headers["x-request-id"] == "serve-1"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert process.returncode in (0, -signal.SIGTERM)
    entries = [orjson.loads(line) for line in (stdout + stderr).splitlines() if line.strip()]
    messages = [entry["message"] for entry in entries]
    assert any("no HERALD_API_KEYS configured" in str(m) for m in messages)
    assert "herald started" in messages
    assert "herald stopping" in messages
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert CANARY not in stdout + stderr
