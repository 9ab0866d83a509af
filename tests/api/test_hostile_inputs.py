"""Every route and page, every input, hostile values: never a 5xx, always a request id.

The routes come from the application itself, so a route added later is walked too (a body route
needs a valid body below to start from: a test says which one is missing). One input at a time
is made hostile — NUL characters, huge text (a million characters in a body, 5000 in a URL),
integers of 2^63 and beyond, times that overflow once converted to UTC, times outside what an
event may carry — in each path segment, query parameter (the API's and the console's and
portal's pages'), JSON value and JSON key, and in the request headers Herald reads. The
dispatcher is off, the routes that connect out (``.../test``) are left out and the name resolver
is stubbed, so nothing leaves the process. One Herald for the module, in process; the whole walk
takes a few seconds (about 1,100 requests over some 50 routes).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from service.api.deps import get_resolver
from service.core.portal_links import Exchanged, exchange
from service.db import transaction
from service.main import create_app
from service.state import HeraldState
from service.web.security import PORTAL_COOKIE
from tests.support.app import make_settings
from tests.support.event_samples import sample_event
from tests.support.postgres import PgServer

NUL = "a\x00b"
MILLION = "x" * 1_000_000
# Valid RFC 3339 times that leave Python's range once converted to UTC.
EARLY, LATE = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"
# What goes into a URL (path segments, query values) or a header. The long one is longer than
# any parameter may be and beyond Python's limit of int(); a request's head is bounded anyway
# (64 KiB), and httpx checks a URL character by character, so longer would cost for nothing.
HOSTILE_TEXT: list[str] = [
    NUL,
    "9" * 5000,
    str(2**63),
    "²",  # a digit to str.isdigit, not to int()
    EARLY,
    LATE,
]
# What replaces a JSON value, by the kind of value it replaces.
HOSTILE_FOR_TEXT: list[Any] = [NUL, MILLION, 2**64, None]
HOSTILE_FOR_TIME: list[Any] = [NUL, EARLY, LATE, "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"]
HOSTILE_FOR_NUMBER: list[Any] = [NUL, 2**63, 2**64, 10**40, -1, 1e308, float("nan")]
HOSTILE_FOR_OTHER: list[Any] = [NUL, 2**64, None]
_TIME = re.compile(r"\d{4}-\d\d-\d\dT")
# The request headers Herald reads somewhere.
READ_HEADERS = [
    "authorization",
    "cookie",
    "content-type",
    "origin",
    "referer",
    "x-request-id",
    "x-forwarded-proto",
    "x-herald-fragment",
    "accept",
]

BASE_URL = "http://herald.test"
PROJECT = "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22"
CUSTOM_TYPE = "fuzz.seeded"
# Never resolved: the name resolver is stubbed.
HOOK_URL = "https://hooks.example.test/herald"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}, "required": ["n"]}


def _timed(type_name: str) -> dict[str, Any]:
    return {**sample_event(type_name), "timestamp": "2026-01-02T03:04:05+01:00"}


# A valid body of every route that takes one, to make hostile one value at a time.
BODIES: dict[str, Any] = {
    "POST /api/v1/events": _timed("project:cron-job:run:pipeline-run:failed"),
    "POST /api/v1/events/batch": {"events": [_timed("project:environment:image-build:failed")]},
    "POST /api/v1/event-types": {"name": "fuzz.other", "description": "d", "schema": SCHEMA},
    "PATCH /api/v1/event-types/{name}": {"description": "d", "schema": SCHEMA},
    "POST /api/v1/subscribers/webhooks": {
        "name": "fuzz",
        "url": HOOK_URL,
        "secret": SECRET,
        "format": "standard",
        "content_type": "application/json",
        "subscriptions": ["project:created", {"event_type": "project:*", "project_uuid": PROJECT}],
        "headers": {"X-Token": "t"},
        "rate_limit_per_minute": 10,
        "ordered": False,
    },
    "PATCH /api/v1/subscribers/{uuid}": {
        "name": "fuzz",
        "url": HOOK_URL,
        "subscriptions": ["project:created", {"event_type": "project:*", "project_uuid": PROJECT}],
        "headers": {"X-Token": "t"},
        "rate_limit_per_minute": 10,
    },
    "POST /api/v1/subscribers/{uuid}/recover": {
        "since": "2026-01-01T00:00:00Z",
        "until": "2026-01-02T00:00:00+01:00",
    },
    "POST /api/v1/analytics": {"event": "view-loaded", "properties": {"a": "b", "n": 1}},
    "POST /api/v1/portal-links": {"project_uuid": PROJECT, "expires_in_seconds": 3600, "read_only": True},
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_page(self) -> bool:
        return self.path.startswith(("/ui/", "/portal/"))


def _params(dependant: Dependant) -> tuple[list[str], list[str]]:
    path = [param.name for param in dependant.path_params]
    query = [param.name for param in dependant.query_params]
    for sub in dependant.dependencies:
        sub_path, sub_query = _params(sub)
        path += sub_path
        query += sub_query
    return path, query


def app_routes(app: FastAPI) -> list[Route]:
    """Every route of ``app`` with its path and query parameters (pages' too), but those that
    connect out; pages by GET only (a page's POST is a form behind a CSRF token)."""
    routes = []
    for context in iter_route_contexts(app.routes):
        dependant, path = getattr(context, "dependant", None), context.path or ""
        if dependant is None or path.endswith("/test"):
            continue
        path_params, query_params = _params(dependant)
        for method in sorted(context.methods or ()):
            route = Route(method, path, tuple(dict.fromkeys(path_params)), tuple(query_params))
            if method != "HEAD" and not (route.is_page and method != "GET"):
                routes.append(route)
    return routes


async def _unresolvable(host: str, port: int) -> list[str]:
    raise OSError(f"{host} does not resolve (stub)")


@dataclass
class Walk:
    """The running Herald, its client (with a portal session) and what it holds."""

    app: FastAPI
    client: httpx.AsyncClient
    path_values: dict[str, str]

    def url(self, route: Route, **overrides: str) -> str:
        """The route's absolute URL (httpx re-parses a relative one joined to its base, slowly)."""
        path = BASE_URL + route.path
        for name in route.path_params:
            value = overrides.get(name, self._path_value(route, name))
            path = path.replace("{" + name + "}", quote(value, safe=""))
        return path

    def _path_value(self, route: Route, name: str) -> str:
        if name != "uuid":
            return self.path_values[name]
        for prefix in ("events", "deliveries", "portal-links", "subscribers", "webhooks"):
            if f"/{prefix}/" in route.path:
                return self.path_values[prefix]
        raise AssertionError(f"no uuid to use in {route.label}")


@pytest.fixture(scope="module")
async def walk(pg: PgServer, template_database: str) -> AsyncIterator[Walk]:
    url = await pg.create_database(template=template_database)
    app = create_app(make_settings(url, allow_private_destinations=False))
    app.dependency_overrides[get_resolver] = lambda: _unresolvable
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Walk(app, client, await _seed(app, client))


async def _seed(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """A webhook, an event delivered to it, a custom type and a portal session, all of PROJECT."""

    async def created(method: str, path: str, body: Any) -> dict[str, Any]:
        response = await client.request(method, path, json=body)
        assert response.status_code in (201, 202), response.text
        answer: dict[str, Any] = response.json()
        return answer

    hook = await created(
        "POST",
        "/api/v1/subscribers/webhooks",
        {"name": "seed", "url": HOOK_URL, "project_uuid": PROJECT, "subscriptions": ["*"]},
    )
    event = _timed("project:created")
    event["project"]["uuid"] = PROJECT
    await created("POST", "/api/v1/events", event)
    await created("POST", "/api/v1/event-types", {"name": CUSTOM_TYPE, "schema": SCHEMA})
    deliveries = (await client.get("/api/v1/deliveries", params={"subscriber_uuid": hook["uuid"]})).json()
    link = await created("POST", "/api/v1/portal-links", {"project_uuid": PROJECT})
    state: HeraldState = app.state.herald
    async with transaction(state.sessions) as session:
        entered = await exchange(session, link["url"].rsplit("/", 1)[1])
    assert isinstance(entered, Exchanged)
    client.cookies.set(PORTAL_COOKIE, entered.session_token)
    return {
        "events": event["uuid"],
        "subscribers": hook["uuid"],
        "webhooks": hook["uuid"],
        "deliveries": deliveries["items"][0]["uuid"],
        "portal-links": link["uuid"],
        "name": CUSTOM_TYPE,
        "event_type": "project:created",
        "token": "not-a-link",
    }


@dataclass
class Failures:
    """Requests answered with a 5xx or without a request id, described without the huge values."""

    found: list[str]

    def check(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 500 or not response.headers.get("x-request-id"):
            self.found.append(f"{what} -> {response.status_code} {response.text[:200]!r}")

    def __bool__(self) -> bool:
        return bool(self.found)


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} chars)"


async def _each(requests: Iterator[tuple[str, Any]], failures: Failures, client: httpx.AsyncClient) -> None:
    """Send the requests a few at a time (each a description and ``client.request`` arguments)."""
    pending = list(requests)
    limit = asyncio.Semaphore(4)

    async def one(what: str, kwargs: dict[str, Any]) -> None:
        async with limit:
            failures.check(await client.request(**kwargs), what)

    await asyncio.gather(*(one(what, kwargs) for what, kwargs in pending))


def _url_requests(walk: Walk, routes: list[Route]) -> Iterator[tuple[str, Any]]:
    for route in routes:
        body = BODIES.get(route.label)
        content = {"json": body} if body is not None else {}
        for name in route.path_params:
            for value in HOSTILE_TEXT:
                url = walk.url(route, **{name: value})
                yield (
                    f"{route.label} path {name}={shown(value)}",
                    {"method": route.method, "url": url, **content},
                )
        for name in route.query_params:
            for value in HOSTILE_TEXT:
                url = walk.url(route) + "?" + urlencode({name: value})
                yield (
                    f"{route.label} query {name}={shown(value)}",
                    {"method": route.method, "url": url, **content},
                )


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every value in ``value``, containers included (each is replaced whole too)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(item, rest, new) if index == head else item for index, item in enumerate(value)]


def _with_key(value: Any, path: tuple[str | int, ...]) -> Any:
    """``value`` with a hostile key added to the object at ``path``."""
    return _replaced(value, path, {**_at(value, path), NUL: 1})


def _body_requests(walk: Walk, routes: list[Route]) -> Iterator[tuple[str, Any]]:
    for route in routes:
        body = BODIES.get(route.label)
        if body is None:
            continue
        url = walk.url(route)
        bodies: list[tuple[str, Any]] = [("key at top", _with_key(body, ()))]
        for path in _leaves(body):
            where = ".".join(map(str, path))
            bodies += [
                (f"{where}={shown(new)}", _replaced(body, path, new)) for new in _hostile_for(_at(body, path))
            ]
            if isinstance(_at(body, path), dict):
                bodies.append((f"key in {where}", _with_key(body, path)))
        for what, hostile in bodies:
            content = json.dumps(hostile).encode()  # NaN as the bare token a JSON reader refuses
            headers = {"content-type": "application/json"}
            yield (
                f"{route.label} body {what}",
                {"method": route.method, "url": url, "content": content, "headers": headers},
            )


def _hostile_for(value: Any) -> list[Any]:
    if isinstance(value, str):
        return HOSTILE_FOR_TIME if _TIME.match(value) else HOSTILE_FOR_TEXT
    if isinstance(value, int | float) and not isinstance(value, bool):
        return HOSTILE_FOR_NUMBER
    return HOSTILE_FOR_OTHER


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _header_requests(walk: Walk, routes: list[Route]) -> Iterator[tuple[str, Any]]:
    values = HOSTILE_TEXT[:4]
    for route in routes:
        body = BODIES.get(route.label)
        for name in READ_HEADERS:
            for value in values:
                headers = {name: value.encode("latin-1")}
                request: dict[str, Any] = {"method": route.method, "url": walk.url(route)}
                if body is not None:
                    request["content"] = json.dumps(body).encode()
                yield f"{route.label} header {name}={shown(value)}", {**request, "headers": headers}


async def test_every_path_segment_and_query_parameter_withstands_hostile_values(walk: Walk) -> None:
    # The pages are walked with a live session in the portal (and an open console), not a redirect.
    for page in ("/ui/events", "/portal/events", "/portal/deliveries", "/portal/webhooks"):
        assert (await walk.client.get(BASE_URL + page)).status_code == 200, page
    failures = Failures([])
    await _each(_url_requests(walk, app_routes(walk.app)), failures, walk.client)
    assert not failures, "\n".join(failures.found)


async def test_every_json_value_and_key_withstands_hostile_values(walk: Walk) -> None:
    failures = Failures([])
    await _each(_body_requests(walk, app_routes(walk.app)), failures, walk.client)
    assert not failures, "\n".join(failures.found)


async def test_headers_herald_reads_withstand_hostile_values(walk: Walk) -> None:
    reading = {"GET /api/v1/events", "POST /api/v1/events", "GET /ui/events", "GET /portal/events"}
    routes = [route for route in app_routes(walk.app) if route.label in reading]
    assert len(routes) == len(reading)
    failures = Failures([])
    await _each(_header_requests(walk, routes), failures, walk.client)
    assert not failures, "\n".join(failures.found)


def test_every_route_with_a_body_has_one_to_start_from(walk: Walk) -> None:
    schema = walk.app.openapi()
    with_body = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation and not path.endswith("/test")
    }
    assert with_body == set(BODIES)
    walked = {route.label for route in app_routes(walk.app)}
    assert set(BODIES) <= walked
    assert {"GET /ui/events", "GET /portal/events", "GET /portal/deliveries"} <= walked
