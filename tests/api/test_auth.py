"""API keys: 401/403 rules, open routes, /metrics, Swagger's security scheme, and the CLI's refusal."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event
from tests.support.process import HERALD_BIN, free_port, herald_env

ADMIN_KEY = "adm-0123456789abcdef"
INGEST_KEY = "ing-0123456789abcdef"
KEYS = f"admin:{ADMIN_KEY}, ingest:{INGEST_KEY}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def secured(app_factory: AppFactory) -> AsyncIterator[RunningApp]:
    async with app_factory(api_keys=KEYS) as running:
        yield running


async def test_missing_key_is_401_with_www_authenticate(secured: RunningApp) -> None:
    response = await secured.client.get("/api/v1/events")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        bearer("not-a-key"),
        bearer(ADMIN_KEY + "x"),
        bearer(ADMIN_KEY[:-1]),
        {"Authorization": f"Basic {ADMIN_KEY}"},
        {"Authorization": ADMIN_KEY},
    ],
    ids=["unknown", "longer", "prefix", "basic-scheme", "no-scheme"],
)
async def test_unknown_or_malformed_key_is_401(secured: RunningApp, headers: dict[str, str]) -> None:
    response = await secured.client.get("/api/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_401_comes_before_body_validation(secured: RunningApp) -> None:
    response = await secured.client.post("/api/v1/events", content=b"{not json")
    assert response.status_code == 401


async def test_the_401_comes_before_the_body_is_read_or_measured(app_factory: AppFactory) -> None:
    async with app_factory(api_keys=KEYS, max_event_bytes=2048) as running:
        oversized = b"x" * 10_000
        response = await running.client.post("/api/v1/events", content=oversized)
        assert response.status_code == 401
        assert response.headers["x-request-id"]
        wrong_scope = await running.client.post(
            "/api/v1/subscribers/webhooks", content=oversized, headers=bearer(INGEST_KEY)
        )
        assert wrong_scope.status_code == 403


async def test_an_api_path_without_a_route_needs_a_key_before_it_is_a_404(secured: RunningApp) -> None:
    assert (await secured.client.get("/api/v1/nothing-here")).status_code == 401
    assert (await secured.client.get("/api/v1/nothing-here", headers=bearer(INGEST_KEY))).status_code == 403
    assert (await secured.client.get("/api/v1/nothing-here", headers=bearer(ADMIN_KEY))).status_code == 404
    # Outside the API, an unknown path is simply not found.
    assert (await secured.client.get("/nothing-here")).status_code == 404


async def test_ingest_key_works_with_a_trailing_slash_and_head(secured: RunningApp) -> None:
    headers = bearer(INGEST_KEY)
    assert (await secured.client.head("/api/v1/event-types", headers=headers)).status_code != 403
    body = sample_event("project:created")
    slash = await secured.client.post("/api/v1/events/", json=body, headers=headers)
    assert slash.status_code in (202, 307), slash.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/subscribers"),
        ("POST", "/api/v1/subscribers/webhooks"),
        ("GET", "/api/v1/deliveries"),
        ("GET", "/metrics"),
    ],
)
async def test_ingest_key_on_admin_routes_is_403(secured: RunningApp, method: str, path: str) -> None:
    # An invalid body too: the scope is checked before anything else is looked at.
    response = await secured.client.request(method, path, headers=bearer(INGEST_KEY), json={"bogus": 1})
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]


async def test_ingest_key_may_ingest_and_read_the_catalog(secured: RunningApp) -> None:
    headers = bearer(INGEST_KEY)
    one = await secured.client.post("/api/v1/events", json=sample_event("project:created"), headers=headers)
    assert one.status_code == 202, one.text
    batch = await secured.client.post(
        "/api/v1/events/batch", json={"events": [sample_event("project:deleted")]}, headers=headers
    )
    assert batch.status_code == 202, batch.text
    types = await secured.client.get("/api/v1/event-types", headers=headers)
    assert types.status_code == 200
    assert len(types.json()["items"]) == 58 + 7  # the catalog, then the operational types


async def test_admin_key_may_do_everything(secured: RunningApp) -> None:
    headers = bearer(ADMIN_KEY)
    ingest = await secured.client.post(
        "/api/v1/events", json=sample_event("project:created"), headers=headers
    )
    assert ingest.status_code == 202
    for path in ("/api/v1/events", "/api/v1/subscribers", "/api/v1/deliveries", "/api/v1/event-types"):
        response = await secured.client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
    metrics = await secured.client.get("/metrics", headers=headers)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/docs", "/openapi.json"])
async def test_health_docs_and_schema_need_no_key(secured: RunningApp, path: str) -> None:
    response = await secured.client.get(path)
    assert response.status_code == 200, response.text


async def test_a_wrong_key_on_an_open_route_is_ignored(secured: RunningApp) -> None:
    response = await secured.client.get("/health/live", headers=bearer("nonsense"))
    assert response.status_code == 200


async def test_metrics_need_admin_only_when_keys_are_configured(
    secured: RunningApp, herald: RunningApp
) -> None:
    assert (await secured.client.get("/metrics")).status_code == 401
    assert (await secured.client.get("/metrics", headers=bearer(INGEST_KEY))).status_code == 403
    assert (await secured.client.get("/metrics", headers=bearer(ADMIN_KEY))).status_code == 200
    # ``herald`` runs with no keys: open (the CLI allows that on loopback only).
    assert (await herald.client.get("/metrics")).status_code == 200


async def test_without_keys_the_api_is_open(herald: RunningApp) -> None:
    assert (await herald.client.get("/api/v1/events")).status_code == 200
    assert (await herald.client.get("/api/v1/subscribers")).status_code == 200


async def test_openapi_declares_the_bearer_scheme_for_swagger(secured: RunningApp) -> None:
    schema = (await secured.client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert "HERALD_API_KEYS" in scheme["description"]
    ingest_op = schema["paths"]["/api/v1/events"]["post"]
    assert {name: []} in ingest_op["security"]
    assert {name: []} in schema["paths"]["/api/v1/subscribers"]["get"]["security"]
    assert {name: []} in schema["paths"]["/api/v1/subscribers/{uuid}"]["get"]["security"]
    assert {name: []} in schema["paths"]["/metrics"]["get"]["security"]
    assert "security" not in schema["paths"]["/health/ready"]["get"]
    docs = await secured.client.get("/docs")
    assert "swagger-ui" in docs.text


# Each start costs a Python process (~2 s): one address and one name.
@pytest.mark.parametrize("host", ["0.0.0.0", "herald.example"])
def test_serve_refuses_a_non_loopback_host_without_keys(database_url: str, tmp_path: Path, host: str) -> None:
    port = free_port()
    result = subprocess.run(
        [str(HERALD_BIN), "serve", "--host", host, "--port", str(port)],
        env=herald_env(database_url, HERALD_API_KEYS=""),
        cwd=tmp_path,  # no stray .env
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to listen" in result.stderr
    assert "HERALD_API_KEYS" in result.stderr
    # It never bound: the port is still free.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_serve_refuses_malformed_api_keys_without_echoing_them(database_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(HERALD_BIN), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=herald_env(database_url, HERALD_API_KEYS="admin:ok-key,superuser:leaked-secret-42"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HERALD_API_KEYS" in result.stderr
    assert "leaked-secret-42" not in result.stderr + result.stdout
