"""Behind a reverse proxy, over real sockets: X-Forwarded-For/-Proto/-Host from a trusted peer
make the client address (the throttle), the cookies' Secure flag and the links; from any other
peer they change nothing. Herald serves on 127.0.0.1 under uvicorn in this process, with
``herald serve``'s options; the test's client plays the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import httpx
import uvicorn

from service.api.forwarded import forwarded_scope
from service.config import Settings, parse_trusted_proxies
from service.core.auth_throttle import MAX_FAILURES
from service.main import create_app
from service.serving import _uvicorn_options
from tests.support.app import make_settings
from tests.support.process import free_port
from tests.web.test_pages_http import csrf_of

ADMIN_KEY = "adm-0123456789abcdef"
KEYS = f"admin:{ADMIN_KEY}"
PUBLIC = "herald.example.com"
THROUGH_TLS_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Herald under uvicorn on a free port of 127.0.0.1, and a client connected to it."""
    port = free_port()
    # herald serve's options (uvicorn's own proxy headers off), on this test's event loop.
    options = _uvicorn_options(settings) | {"loop": "asyncio"}
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, **options)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                assert not serving.done(), "herald did not start"
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await serving


async def portal_link_url(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    made = await client.post(
        "/api/v1/portal-links", json={"project_uuid": str(uuid4())}, headers=ADMIN | headers
    )
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    return url


async def sign_in(client: httpx.AsyncClient, origin: str, headers: dict[str, str]) -> httpx.Response:
    """Sign in to the console; the CSRF cookie is sent by hand (a Secure one is not sent over http)."""
    form = await client.get("/ui/login", headers=headers)
    csrf_cookie = form.cookies["herald_csrf"]
    client.cookies.clear()
    return await client.post(
        "/ui/login",
        data={"api_key": ADMIN_KEY, "csrf_token": csrf_of(form)},
        headers=headers | {"Origin": origin, "Cookie": f"herald_csrf={csrf_cookie}"},
    )


def session_cookie(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("herald_session=")]
    return cookie


async def guess_from(client: httpx.AsyncClient, address: str, attempts: int) -> list[int]:
    statuses: list[int] = []
    for attempt in range(attempts):
        headers = {"Authorization": f"Bearer guess-{attempt}-0123456789", "X-Forwarded-For": address}
        statuses.append((await client.get("/api/v1/events", headers=headers)).status_code)
    return statuses


async def status_of_admin_from(client: httpx.AsyncClient, address: str | None) -> int:
    headers = ADMIN | ({"X-Forwarded-For": address} if address else {})
    return (await client.get("/api/v1/events", headers=headers)).status_code


async def test_a_trusted_proxy_gives_the_links_the_cookies_and_the_throttle_their_client(
    database_url: str,
) -> None:
    settings = make_settings(database_url, api_keys=KEYS, proxy_headers=True)  # trusts 127.0.0.1
    async with served(settings) as client:
        assert (await portal_link_url(client, THROUGH_TLS_PROXY)).startswith(f"https://{PUBLIC}/portal/")
        cookie = session_cookie(await sign_in(client, f"https://{PUBLIC}", THROUGH_TLS_PROXY))
        assert "; Secure" in cookie
        # Two clients behind the proxy are counted apart; the proxy's own address is not blocked.
        one, other = "203.0.113.7", "198.51.100.20"
        assert await guess_from(client, one, MAX_FAILURES + 1) == [401] * MAX_FAILURES + [429]
        assert await status_of_admin_from(client, one) == 429
        assert await status_of_admin_from(client, other) == 200
        assert await guess_from(client, other, 1) == [401]
        assert await status_of_admin_from(client, None) == 200
        # The client is the last address the proxies appended that is not a trusted proxy.
        assert await status_of_admin_from(client, f"192.0.2.1, {one}, 127.0.0.1") == 429


async def test_forwarded_headers_from_a_peer_not_trusted_change_nothing(database_url: str) -> None:
    settings = make_settings(
        database_url, api_keys=KEYS, proxy_headers=True, forwarded_allow_ips="192.0.2.0/24"
    )
    async with served(settings) as client:
        direct = str(client.base_url).rstrip("/")
        assert (await portal_link_url(client, THROUGH_TLS_PROXY)).startswith(f"{direct}/portal/")
        assert "Secure" not in session_cookie(await sign_in(client, direct, THROUGH_TLS_PROXY))
        # Each guess claims another address; all count against the peer's own.
        statuses = [
            status
            for attempt in range(MAX_FAILURES + 1)
            for status in await guess_from(client, f"203.0.113.{attempt + 1}", 1)
        ]
        assert statuses == [401] * MAX_FAILURES + [429]
        assert await status_of_admin_from(client, "198.51.100.20") == 429


def scope_with(*headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"herald.internal:8000"), *((n.encode(), v.encode()) for n, v in headers)],
    }


def test_forwarded_values_that_are_not_an_address_a_scheme_or_a_host_change_nothing() -> None:
    trusted = parse_trusted_proxies("127.0.0.1")
    for header, value in [
        ("x-forwarded-for", "not-an-address"),
        ("x-forwarded-proto", "javascript"),
        ("x-forwarded-host", "evil.example/path?x=1"),
        ("x-forwarded-host", "a b"),
        ("x-forwarded-host", ""),
    ]:
        scope = scope_with((header, value))
        assert forwarded_scope(scope, trusted) == scope, (header, value)


def test_the_nearest_proxy_s_values_are_taken() -> None:
    trusted = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8")
    scope = forwarded_scope(
        scope_with(
            ("x-forwarded-for", "192.0.2.9, 203.0.113.5"),
            ("x-forwarded-for", "10.1.1.1"),  # a second header continues the list
            ("x-forwarded-proto", "http, HTTPS"),
            ("x-forwarded-host", "spoofed.example, herald.example.com:8443"),
        ),
        trusted,
    )
    assert scope["client"] == ("203.0.113.5", 0)
    assert scope["scheme"] == "https"
    assert (b"host", b"herald.example.com:8443") in scope["headers"]
    assert (b"host", b"herald.internal:8000") not in scope["headers"]
    # Every address a trusted proxy: the farthest one is the client.
    assert forwarded_scope(scope_with(("x-forwarded-for", "10.0.0.1, 10.0.0.2")), trusted)["client"] == (
        "10.0.0.1",
        0,
    )
