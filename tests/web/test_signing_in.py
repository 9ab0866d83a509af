"""Signing in to the console with an admin key, signing out, and requests that must be refused."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import BrowserContext, Page, expect

from tests.support.api import create_webhook
from tests.web.conftest import ADMIN_KEY, INGEST_KEY, Server, sign_in


async def test_pages_without_a_session_lead_to_the_sign_in_form(context: BrowserContext) -> None:
    page = await context.new_page()
    for path in ("/ui/", "/ui/webhooks", "/ui/deliveries", "/ui/events", "/ui/event-types"):
        await page.goto(path)
        assert page.url.endswith("/ui/login"), path
    await expect(page.get_by_label("API key")).to_be_visible()


async def test_a_wrong_or_ingest_key_shows_the_form_again_with_an_error(context: BrowserContext) -> None:
    page = await context.new_page()
    for key in ("not-a-key", INGEST_KEY, ""):
        await sign_in(page, key)
        if key:  # an empty field is stopped by the browser (required)
            await expect(page.get_by_role("alert")).to_contain_text("admin API key")
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert not [c for c in await context.cookies() if c["name"] == "herald_session"]


async def test_signing_in_sets_a_strict_httponly_session_cookie_and_signing_out_ends_it(
    context: BrowserContext, server: Server
) -> None:
    page = await context.new_page()
    await sign_in(page)
    await page.wait_for_url("**/ui/")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    [cookie] = [c for c in await context.cookies() if c["name"] == "herald_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["value"] != ADMIN_KEY
    assert 0 < cookie["expires"] - (await page.evaluate("Date.now() / 1000")) <= 12 * 3600 + 60
    async with httpx.AsyncClient(base_url=server.base_url) as client:  # the session works elsewhere too
        answer = await client.get("/ui/webhooks", cookies={"herald_session": cookie["value"]})
        assert answer.status_code == 200
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/ui/login")
        await page.goto("/ui/webhooks")
        assert page.url.endswith("/ui/login")
        answer = await client.get("/ui/webhooks", cookies={"herald_session": cookie["value"]})
        assert answer.status_code == 303
        assert answer.headers["location"].endswith("/ui/login")


async def test_pages_forbid_inline_scripts_and_framing(page: Page, server: Server) -> None:
    response = await page.goto("/ui/webhooks")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    scripts = policy.split("script-src")[1].split(";")[0]
    assert "'self'" in scripts
    assert "unsafe-inline" not in scripts


async def test_a_cross_site_post_is_refused(page: Page, server: Server) -> None:
    hook = await create_webhook(server.api, "http://127.0.0.1:9/hook", name="target of a forgery")
    session = next(c["value"] for c in await page.context.cookies() if c["name"] == "herald_session")
    await page.goto(f"/ui/webhooks/{hook['uuid']}")
    token = await page.locator("input[name=csrf_token]").first.input_value()
    path = f"/ui/webhooks/{hook['uuid']}/disable"
    own = {"Origin": server.base_url}
    async with httpx.AsyncClient(base_url=server.base_url, cookies={"herald_session": session}) as client:
        assert (await client.post(path, headers=own)).status_code == 403  # no token
        wrong = {"csrf_token": "forged"}
        assert (await client.post(path, data=wrong, headers=own)).status_code == 403
        foreign = {"Origin": "https://evil.example"}
        assert (await client.post(path, data={"csrf_token": token}, headers=foreign)).status_code == 403
        opaque = {"Origin": "null"}
        assert (await client.post(path, data={"csrf_token": token}, headers=opaque)).status_code == 403
        assert (await server.api.get(f"/api/v1/subscribers/{hook['uuid']}")).json()["enabled"] is True
        done = await client.post(path, data={"csrf_token": token}, headers=own)
        assert done.status_code == 303
        assert re.search(r"done=disabled$", done.headers["location"])
    assert (await server.api.get(f"/api/v1/subscribers/{hook['uuid']}")).json()["enabled"] is False
