"""A project's portal in a real browser: it sees only its project, a link opens it once, a
read-only link changes nothing (the server refuses), and webhooks made there are the project's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Dialog, Page, expect

from service.common.secrets import generate_secret
from tests.support.api import HOOK_URL, create_webhook, event_of, new_uuid
from tests.support.receiver import Receiver
from tests.web.conftest import Server, VerifyingReceiver, api_json
from tests.web.test_docs_and_screenshots import SCREENSHOTS_DIR_VAR, WIDTHS

LINKS = "/api/v1/portal-links"


async def portal_link(server: Server, project: str, **fields: Any) -> dict[str, Any]:
    link: dict[str, Any] = await api_json(
        await server.api.post(LINKS, json={"project_uuid": project, **fields}), 201
    )
    return link


async def enter(context: BrowserContext, link: dict[str, Any]) -> Page:
    """Open the link's page and press its **Open portal** button."""
    page = await context.new_page()
    await page.goto(link["url"])
    await page.get_by_role("button", name="Open portal").click()
    await page.wait_for_url("**/portal/webhooks")
    return page


def screenshots_dir(tmp_path: Path) -> Path:
    into = Path(os.environ.get(SCREENSHOTS_DIR_VAR) or tmp_path)
    into.mkdir(parents=True, exist_ok=True)
    return into


async def test_a_links_page_spends_nothing_and_its_button_opens_the_portal(
    context: BrowserContext, server: Server, tmp_path: Path
) -> None:
    project = new_uuid()
    link = await portal_link(server, project)
    page = await context.new_page()
    into = screenshots_dir(tmp_path)
    for label, width in WIDTHS.items():  # each visit, like a link preview's, leaves the link as it was
        await page.set_viewport_size({"width": width, "height": 700})
        shown = await page.goto(link["url"])
        assert shown is not None
        assert shown.status == 200
        entry = page.get_by_test_id("portal-entry")
        await expect(entry).to_contain_text("opens your project's webhook portal")
        await page.screenshot(path=str(into / f"portal-entry-{label}.png"), full_page=True)
    assert await context.cookies() == []
    [listed] = (await api_json(await server.api.get(LINKS, params={"project_uuid": project}), 200))["items"]
    assert listed["used_at"] is None
    await page.get_by_role("button", name="Open portal").click()
    await page.wait_for_url("**/portal/webhooks")
    await expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    assert [c["name"] for c in await context.cookies()] == ["herald_portal"]


async def test_the_portal_sees_only_its_project(
    context: BrowserContext, server: Server, tmp_path: Path
) -> None:
    project, other = new_uuid(), new_uuid()
    # Subscribed to a type not sent here: no failing deliveries, so no operational events either.
    quiet = [{"event_type": "project:updated"}]
    mine = await create_webhook(
        server.api, HOOK_URL, name="Our builds", project_uuid=project, subscriptions=quiet
    )
    theirs = await create_webhook(
        server.api, HOOK_URL, name="Their builds", project_uuid=other, subscriptions=quiet
    )
    for owner in (project, other):
        await api_json(await server.api.post("/api/v1/events", json=event_of("project:created", owner)), 202)
    page = await enter(context, await portal_link(server, project))
    rows = page.get_by_test_id("webhook-row")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("Our builds")
    await expect(page.get_by_role("link", name="Overview")).to_have_count(0)
    await page.goto("/portal/events")
    await expect(page.get_by_test_id("event-row")).to_have_count(1)
    await page.get_by_label("Type").fill("project:*")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_test_id("event-row")).to_have_count(1)
    outside = await page.goto(f"/portal/webhooks/{theirs['uuid']}")
    assert outside is not None
    assert outside.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    inside = await page.goto(f"/portal/webhooks/{mine['uuid']}")
    assert inside is not None
    assert inside.status == 200
    into = screenshots_dir(tmp_path)
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto(f"/portal/webhooks/{mine['uuid']}")
        shot = into / f"portal-webhook-{label}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot.name} is nearly empty"


async def test_a_used_or_revoked_link_opens_nothing(context: BrowserContext, server: Server) -> None:
    project = new_uuid()
    link = await portal_link(server, project)
    first = await enter(context, link)
    await expect(first.get_by_role("heading", name="Webhooks")).to_be_visible()
    stranger = await context.browser.new_context(base_url=server.base_url) if context.browser else None
    assert stranger is not None
    try:
        second = await stranger.new_page()
        again = await second.goto(link["url"])
        assert again is not None
        assert again.status == 410
        await expect(second.get_by_test_id("portal-closed")).to_contain_text("used already")
        assert not [c for c in await stranger.cookies() if c["name"] == "herald_portal"]
        revoked = await portal_link(server, project)
        assert (await server.api.delete(f"{LINKS}/{revoked['uuid']}")).status_code == 204
        gone = await second.goto(revoked["url"])
        assert gone is not None
        assert gone.status == 410
        await expect(second.get_by_test_id("portal-closed")).to_contain_text("revoked")
    finally:
        await stranger.close()
    assert (await server.api.delete(f"{LINKS}/{link['uuid']}")).status_code == 204
    ended = await first.reload()
    assert ended is not None
    assert ended.status == 401  # revoking the link ended the session it opened


async def test_a_read_only_link_hides_changes_and_the_server_refuses_them(
    context: BrowserContext, server: Server
) -> None:
    project = new_uuid()
    hook = await create_webhook(server.api, HOOK_URL, name="Watched only", project_uuid=project)
    page = await enter(context, await portal_link(server, project, read_only=True))
    await expect(page.get_by_role("link", name="New webhook")).to_have_count(0)
    await page.get_by_test_id("webhook-row").get_by_role("link", name="Watched only").click()
    await expect(page.get_by_role("heading", name="Watched only")).to_be_visible()
    for control in ("Send test", "Rotate secret", "Disable", "Delete", "Recover"):
        await expect(page.get_by_role("button", name=control)).to_have_count(0)
    token = await page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    assert token
    refused = await page.request.post(
        f"/portal/webhooks/{hook['uuid']}/disable",
        form={"csrf_token": token},
        headers={"Origin": server.base_url},
    )
    assert refused.status == 403
    assert (await api_json(await server.api.get(f"/api/v1/subscribers/{hook['uuid']}"), 200))["enabled"]


async def test_a_webhook_made_in_the_portal_is_the_projects(
    context: BrowserContext, server: Server, receiver: Receiver
) -> None:
    project = new_uuid()
    page = await enter(context, await portal_link(server, project))
    await page.get_by_role("link", name="New webhook").click()
    await page.get_by_label("Name", exact=True).fill("Made in the portal")
    await page.get_by_label("URL", exact=True).fill(receiver.url("/portal-made"))
    await page.get_by_label("project:created", exact=True).check()
    await expect(page.get_by_label("jupyter:image-build:created", exact=True)).to_have_count(0)
    await page.get_by_role("button", name="Create webhook").click()
    await expect(page.get_by_test_id("secret")).to_contain_text("whsec_")
    listed = await api_json(
        await server.api.get("/api/v1/subscribers", params={"project_uuid": project}), 200
    )
    [made] = listed["items"]
    assert made["name"] == "Made in the portal"
    assert made["subscriptions"] == [{"event_type": "project:created", "project_uuid": project}]
    await api_json(await server.api.post("/api/v1/events", json=event_of("project:created", new_uuid())), 202)
    await api_json(await server.api.post("/api/v1/events", json=event_of("project:created", project)), 202)
    [request] = await receiver.wait_for(1, "/portal-made")
    assert project.encode() in request.body


async def test_the_portals_form_tests_with_the_typed_secret_and_keeps_the_headers(
    context: BrowserContext, server: Server, verifying_receiver: VerifyingReceiver
) -> None:
    page = await enter(context, await portal_link(server, new_uuid()))
    await page.get_by_role("link", name="New webhook").click()
    await page.get_by_label("Name", exact=True).fill("Checked by the project")
    await page.get_by_label("URL", exact=True).fill(verifying_receiver.url("/portal"))
    await page.get_by_label("project:created", exact=True).check()
    typed = generate_secret()
    verifying_receiver.secret = typed  # the project's receiver already knows the secret it chose
    await page.get_by_label("Signing secret").fill(typed)
    await page.locator("#headers").fill("X-Team: green")
    await page.get_by_role("button", name="Send test").click()
    await expect(page.get_by_test_id("test-result")).to_contain_text("The receiver answered 200")
    await expect(page.get_by_test_id("test-response")).to_have_text("verified")
    await expect(page.get_by_test_id("secret-made")).to_have_count(0)
    await expect(page.get_by_label("Signing secret")).to_have_value(typed)
    await expect(page.locator("#headers")).to_have_value("X-Team: green")
    [(ping, headers)] = verifying_receiver.verified
    assert (ping["event"]["type"], headers["x-team"]) == ("ping", "green")
    await page.get_by_role("button", name="Create webhook").click()
    await expect(page.get_by_test_id("secret")).to_have_text(typed)
    await expect(page.get_by_test_id("header-names")).to_have_text("X-Team")


async def test_the_console_makes_and_revokes_portal_links(page: Page, server: Server) -> None:
    project = new_uuid()
    await page.goto("/ui/portal-links")
    await page.get_by_label("Project").fill(project)
    await page.get_by_label("Read-only (changes nothing)").check()
    await page.get_by_role("button", name="Create link").click()
    url = (await page.get_by_test_id("portal-link").inner_text()).strip()
    assert url.startswith(server.base_url + "/portal/enter/")
    row = page.get_by_test_id("portal-link-row").filter(has_text=project)
    await expect(row).to_contain_text("read-only")
    await expect(row).to_contain_text("not opened")

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await row.get_by_role("button", name="Revoke").click()
    await page.wait_for_url("**/ui/portal-links?done=revoked")
    await expect(page.get_by_test_id("portal-link-row").filter(has_text=project)).to_contain_text("revoked")
    links = await api_json(await server.api.get(LINKS, params={"project_uuid": project}), 200)
    assert links["items"][0]["revoked_at"] is not None
