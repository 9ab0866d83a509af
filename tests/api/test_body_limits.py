"""Request bodies before any route reads them: their encoding (415), their size (413) and, for the
JSON API, their UTF-8 (422 naming the byte)."""

from __future__ import annotations

import gzip
from typing import Any
from uuid import uuid4

import orjson
import pytest

from service.api.limits import UTF8_SLICE_BYTES, utf8_problem
from tests.support.app import AppFactory, RunningApp
from tests.support.event_samples import sample_event

# API calls against a default app: one app for the module, the database emptied after each test.
pytestmark = pytest.mark.shared_app

WEBHOOK = {"name": "n", "url": "http://127.0.0.1:9/", "subscriptions": [{"event_type": "*"}]}
# Every route that takes a JSON body, with a body it would accept.
JSON_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/events", sample_event("project:created")),
    ("POST", "/api/v1/events/batch", {"events": [sample_event("project:created")]}),
    ("POST", "/api/v1/analytics", {"event": "page viewed", "properties": {}}),
    ("POST", "/api/v1/event-types", {"name": "order.placed", "description": "d", "schema": {}}),
    ("PATCH", "/api/v1/event-types/order.placed", {"description": "e"}),
    ("POST", "/api/v1/subscribers/webhooks", WEBHOOK),
    ("POST", "/api/v1/subscribers/webhooks/test", WEBHOOK),
    ("PATCH", f"/api/v1/subscribers/{uuid4()}", {"name": "m"}),
    ("POST", f"/api/v1/subscribers/{uuid4()}/recover", {}),
    ("POST", "/api/v1/portal-links", {"project_uuid": str(uuid4())}),
]
ROUTE_IDS = [f"{method} {path.split('/api/v1/')[1]}" for method, path, _ in JSON_ROUTES]
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(("method", "path", "body"), JSON_ROUTES, ids=ROUTE_IDS)
async def test_a_compressed_body_is_refused_naming_its_encoding(
    herald: RunningApp, method: str, path: str, body: dict[str, Any]
) -> None:
    response = await herald.client.request(
        method, path, content=gzip.compress(orjson.dumps(body)), headers=JSON | {"content-encoding": "gzip"}
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "Content-Encoding 'gzip' is not supported: send the body uncompressed (identity)"
    )


@pytest.mark.parametrize(("method", "path", "body"), JSON_ROUTES, ids=ROUTE_IDS)
async def test_a_body_that_is_not_utf8_is_refused_naming_the_byte(
    herald: RunningApp, method: str, path: str, body: dict[str, Any]
) -> None:
    text = orjson.dumps(body)
    bad = text[:-1] + b',"caf\xe9":1}'  # é in Latin-1
    response = await herald.client.request(method, path, content=bad, headers=JSON)
    assert response.status_code == 422
    offset = len(text) - 1 + len(b',"caf')
    problem = f"invalid UTF-8 at byte offset {offset} of the body (byte 0xe9: invalid continuation byte)"
    assert response.json()["detail"] == [{"loc": ["body"], "msg": problem, "type": "json_invalid"}]


async def test_an_identity_encoded_utf8_body_is_recorded(herald: RunningApp) -> None:
    body = sample_event("project:created")
    body["project"]["name"] = "modèle de churn ✓"
    response = await herald.client.post(
        "/api/v1/events", content=orjson.dumps(body), headers=JSON | {"content-encoding": "identity"}
    )
    assert response.status_code == 202, response.text


async def test_the_batch_limit_bounds_batches_and_the_event_limit_single_events(
    app_factory: AppFactory,
) -> None:
    async with app_factory(max_batch_bytes=4096) as running:
        event = sample_event("project:one-off-job:pipeline-run:failed")
        # A single event over the batch limit is no batch: the event limit is its own.
        event["pipeline_run"]["parameters"]["pipeline_parameters"]["blob"] = "n" * 5000
        assert (await running.client.post("/api/v1/events", json=event)).status_code == 202
        response = await running.client.post("/api/v1/events/batch", json={"events": [event]})
        assert response.status_code == 413
        assert response.json()["detail"] == "request body too large: the limit is 4096 bytes"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"plain ascii", None),
        (b"caf\xc3\xa9 \xe2\x9c\x93", None),
        (b"a" * (UTF8_SLICE_BYTES - 1) + "✓".encode(), None),  # a character across two slices
        (b"a" * (UTF8_SLICE_BYTES + 5) + b"\xff", "offset 65541 of the body (byte 0xff: invalid start byte)"),
        (b'{"a": "\xe2\x9c"}', "offset 7 of the body (byte 0xe2: invalid continuation byte)"),
        (b'{"a": "\xe2\x9c', "offset 7 of the body (byte 0xe2: unexpected end of data)"),
        (b'"\xed\xa0\x80"', "offset 1 of the body (byte 0xed: invalid continuation byte)"),  # a surrogate
    ],
)
def test_utf8_problem_names_the_first_byte_that_is_not_utf8(body: bytes, problem: str | None) -> None:
    assert utf8_problem(body) == (None if problem is None else f"invalid UTF-8 at byte {problem}")
