"""Swagger UI works with no internet, and the console's main pages as pictures (docs/screenshots/)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
from playwright.async_api import BrowserContext, Page, expect

from service.db import asyncpg_dsn
from tests.support.api import create_webhook
from tests.support.browser import OffMachine
from tests.support.event_samples import sample_event
from tests.support.receiver import Receiver, Reply
from tests.web.conftest import Server, api_json

# The pictures in docs/screenshots are made with HERALD_SCREENSHOTS_DIR=docs/screenshots; otherwise
# each run writes them to its own temporary directory (the checkout stays clean).
SCREENSHOTS_DIR_VAR = "HERALD_SCREENSHOTS_DIR"
WIDTHS = {"desktop": 1280, "mobile": 375}


async def test_docs_show_the_operations_without_leaving_the_machine(
    context: BrowserContext, off_machine: OffMachine
) -> None:
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto("/docs")
    operations = page.locator(".opblock")
    await expect(operations.first).to_be_visible(timeout=15_000)
    assert await operations.count() > 20
    await expect(page.get_by_text("/api/v1/events/batch").first).to_be_visible()
    # The requests Herald sends (OpenAPI webhooks), one per format and content type.
    for entry in ("standard-json", "standard-form", "slack", "teams", "discord"):
        await expect(page.get_by_text(entry, exact=True).first).to_be_visible()
    assert off_machine.urls == []
    assert problems == []


async def _seed(server: Server, receiver: Receiver) -> dict[str, str]:
    """Three webhooks (healthy, flaky, down) and a few dozen events through them."""
    receiver.reply("/flaky", Reply(status=500, body=b"upstream timed out"), Reply(status=503, body=b"busy"))
    receiver.reply("/down", then=Reply(status=500, body=b'{"error": "database connection refused"}'))
    healthy = await create_webhook(server.api, receiver.url("/healthy"), name="Deploy notifications")
    flaky = await create_webhook(
        server.api,
        receiver.url("/flaky"),
        name="CI failures to #ops",
        subscriptions=[{"event_type": "project:one-off-job:pipeline-run:failed"}],
    )
    everything = [{"event_type": "project:*"}]
    await create_webhook(server.api, receiver.url("/down"), name="Legacy dashboard", subscriptions=everything)
    types = ["project:created", "project:pipeline:created", "jupyter:image-build:succeeded"] * 24
    events = [sample_event(name, canary="demo") for name in types]
    events.append(sample_event("project:one-off-job:pipeline-run:failed", canary="nightly"))
    await api_json(await server.api.post("/api/v1/events/batch", json={"events": events}), 202)
    await receiver.wait_for(3, "/flaky")
    for _ in range(100):  # until the flaky one is delivered and the down one has failed for good
        pending = await api_json(await server.api.get("/api/v1/deliveries?status=pending&limit=1"), 200)
        if not pending["items"]:
            break
        await asyncio.sleep(0.1)
    # A day's worth of history for the chart: the deliveries spread over the last 24 hours.
    conn = await asyncpg.connect(asyncpg_dsn(server.database_url))
    try:
        await conn.execute(
            "UPDATE deliveries SET created_at = now() - make_interval(hours => (seq * 7 % 24)::int) "
            "WHERE subscriber_kind = 'webhook'"
        )
    finally:
        await conn.close()
    listed = await server.api.get(f"/api/v1/deliveries?subscriber_uuid={flaky['uuid']}")
    [delivery] = (await api_json(listed, 200))["items"]
    return {
        "overview": "/ui/",
        "webhook": f"/ui/webhooks/{flaky['uuid']}",
        "delivery": f"/ui/deliveries/{delivery['uuid']}",
        "webhooks": "/ui/webhooks",
        "healthy": healthy["uuid"],
    }


async def _shoot(page: Page, path: str, name: str, into: Path) -> None:
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto(path)
        shot = into / f"{name}-{label}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot.name} is nearly empty"


async def test_screenshots_of_the_main_pages(
    page: Page, server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    paths = await _seed(server, receiver)
    into = Path(os.environ.get(SCREENSHOTS_DIR_VAR) or tmp_path)
    into.mkdir(parents=True, exist_ok=True)
    await page.goto(paths["delivery"])
    await expect(page.get_by_test_id("attempt-row")).to_have_count(3)
    for name in ("overview", "webhook", "delivery"):
        await _shoot(page, paths[name], name, into)
    await page.goto(paths["webhooks"])
    await expect(page.get_by_test_id("webhook-row")).to_have_count(3)
