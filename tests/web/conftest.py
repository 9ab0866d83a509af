"""Fixtures of the console tests: one browser per session, one ``herald serve`` per module.

The server is a real process on 127.0.0.1 with API keys configured, the dispatcher on and
short retry waits, against a database of the module's own (a copy of the migrated template).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.common.secrets import generate_secret
from tests.support.browser import CHROMIUM_ARGS, OffMachine, chromium_path
from tests.support.postgres import PgServer
from tests.support.process import HERALD_BIN, free_port, herald_env, wait_ready
from tests.support.receiver import Receiver, running_receiver

ADMIN_KEY = "console-admin-key"
INGEST_KEY = "console-ingest-key"
SERVER_SETTINGS = {
    "HERALD_API_KEYS": f"admin:{ADMIN_KEY},ingest:{INGEST_KEY}",
    "HERALD_DISPATCHER_ENABLED": "true",
    "HERALD_ALLOW_PRIVATE_DESTINATIONS": "true",
    "HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS": "true",  # the portal tests deliver to 127.0.0.1 too
    "HERALD_POLL_INTERVAL_SECONDS": "0.05",
    "HERALD_RETRY_SCHEDULE": "100ms,200ms",
    "HERALD_DELIVERY_TIMEOUT_SECONDS": "2",
    "HERALD_SHUTDOWN_GRACE_SECONDS": "1",
}


@dataclass
class Server:
    """A running ``herald serve`` and an API client for it (admin key)."""

    base_url: str
    api: httpx.AsyncClient
    database_url: str


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def server(pg: PgServer, template_database: str) -> AsyncIterator[Server]:
    database_url = await pg.create_database(template=template_database)
    port = free_port()
    process = subprocess.Popen(
        [str(HERALD_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=herald_env(database_url, **SERVER_SETTINGS),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(port, process)
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as api:
            yield Server(base_url=base_url, api=api, database_url=database_url)
    finally:
        process.kill()  # its database is thrown away with it: no need for a graceful stop
        process.wait(timeout=15)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


class VerifyingReceiver:
    """A receiver that checks signatures as a real one does: 200 for a request signed with
    ``secret`` (the one it was given), else 400 saying why, in a body with markup (shown escaped)."""

    def __init__(self) -> None:
        self.secret = generate_secret()
        self.verified: list[tuple[Any, dict[str, str]]] = []
        """Each request that passed: its event and its headers (names in lower case)."""
        self.port = 0

    def url(self, path: str = "/verify") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            event = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            return web.Response(status=400, text=f"<b>refused</b>: {exc}")
        self.verified.append((event, headers))
        return web.Response(text="verified")


@pytest.fixture(scope="module")
async def verifying_receiver() -> AsyncIterator[VerifyingReceiver]:
    receiver = VerifyingReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
def off_machine() -> OffMachine:
    return OffMachine()


async def new_context(
    browser: Browser, server: Server, off_machine: OffMachine, storage_state: Any = None
) -> BrowserContext:
    """A browser profile whose requests may not leave the machine."""
    created = await browser.new_context(
        base_url=server.base_url, viewport={"width": 1280, "height": 900}, storage_state=storage_state
    )

    async def guard(route: Route) -> None:
        if off_machine.allows(route.request.url):
            await route.continue_()
        else:
            await route.abort()

    await created.route("**/*", guard)
    return created


@pytest.fixture
async def context(browser: Browser, server: Server, off_machine: OffMachine) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies)."""
    created = await new_context(browser, server, off_machine)
    yield created
    await created.close()


async def sign_in(page: Page, key: str = ADMIN_KEY) -> None:
    await page.goto("/ui/login")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
async def admin_state(browser: Browser, server: Server) -> Any:
    """The cookies of one admin sign-in, shared by the module's tests (signing in once is faster)."""
    signing_in = await new_context(browser, server, OffMachine())
    opened = await signing_in.new_page()
    await sign_in(opened)
    await opened.wait_for_url("**/ui/")
    state = await signing_in.storage_state()
    await signing_in.close()
    return state


@pytest.fixture
async def page(
    browser: Browser, server: Server, off_machine: OffMachine, admin_state: Any
) -> AsyncIterator[Page]:
    """A page of a signed-in admin."""
    created = await new_context(browser, server, off_machine, admin_state)
    yield await created.new_page()
    await created.close()


async def api_json(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def webhook_enabled(server: Server, uuid: str) -> bool:
    found = await api_json(await server.api.get(f"/api/v1/subscribers/{uuid}"), 200)
    return bool(found["enabled"])
