"""The console's main flows in a real browser: create a webhook and receive its signed delivery,
test-send (the form keeping what was typed, and the secret it signed with), disable / enable,
rotate, delete, redeliver, and events shown as text."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from playwright.async_api import Dialog, Locator, Page, expect
from standardwebhooks import Webhook

from tests.support.api import HOOK_URL, create_webhook, event_of
from tests.support.db import eventually
from tests.support.receiver import Receiver, Reply
from tests.web.conftest import Server, VerifyingReceiver, api_json, webhook_enabled
from tests.web.test_docs_and_screenshots import SCREENSHOTS_DIR_VAR, WIDTHS

WEBHOOK_PAGE = re.compile(r"/ui/webhooks/[0-9a-f-]{36}$")


async def until_count(page: Page, rows: Locator, count: int) -> None:
    """Reload until ``rows`` has ``count`` elements (what the dispatcher writes comes a moment later)."""
    for _ in range(50):
        if await rows.count() == count:
            return
        await page.wait_for_timeout(100)
        await page.reload()
    raise AssertionError(f"never {count}: {await rows.all_inner_texts()}")


async def fill_new_webhook(page: Page, name: str, url: str, *types: str) -> None:
    await page.goto("/ui/webhooks")
    await page.get_by_role("link", name="New webhook").click()
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("URL", exact=True).fill(url)
    for type_name in types:
        await page.get_by_label(type_name, exact=True).check()


async def test_a_webhook_made_with_the_form_gets_a_signed_delivery(
    page: Page, server: Server, receiver: Receiver
) -> None:
    await fill_new_webhook(page, "Made in the console", receiver.url("/made"), "project:created")
    await page.get_by_role("button", name="Create webhook").click()
    secret = (await page.get_by_test_id("secret").inner_text()).strip()
    assert secret.startswith("whsec_")
    await page.wait_for_url(WEBHOOK_PAGE)  # the page takes its own address back (no resubmit on reload)
    uuid = page.url.rsplit("/", 1)[1]
    stored = await api_json(await server.api.get(f"/api/v1/subscribers/{uuid}"), 200)
    assert stored["subscriptions"] == [{"event_type": "project:created"}]
    await page.reload()
    await expect(page.get_by_test_id("secret")).to_have_count(0)  # shown once

    event = await api_json(await server.api.post("/api/v1/events", json=event_of("project:created")), 202)
    [request] = await receiver.wait_for(1, "/made")
    Webhook(secret).verify(request.body, request.headers)
    assert json.loads(request.body)["event"]["uuid"] == event["uuid"]
    rows = page.get_by_test_id("delivery-row")
    await until_count(page, rows.filter(has_text="delivered"), 1)
    await rows.first.get_by_role("link").first.click()
    await expect(page.get_by_test_id("attempt-row")).to_have_count(1)
    await expect(page.get_by_test_id("attempt-row")).to_contain_text("HTTP 200")

    await page.goto("/ui/webhooks")
    row = page.get_by_test_id("webhook-row").filter(has_text="Made in the console")
    await row.get_by_role("link", name="Made in the console").click()
    assert page.url.endswith(f"/ui/webhooks/{uuid}")


async def test_send_test_before_and_after_creation_shows_the_outcome(
    page: Page, server: Server, receiver: Receiver
) -> None:
    await fill_new_webhook(page, "Tested first", receiver.url("/tested"), "project:deleted")
    await page.get_by_role("button", name="Send test").click()
    await expect(page.get_by_test_id("test-result")).to_contain_text("answered 200")
    assert receiver.on("/tested")[-1].headers["herald-event-type"] == "ping"
    listed = await api_json(await server.api.get("/api/v1/subscribers?type=webhook"), 200)
    assert "Tested first" not in [hook["name"] for hook in listed["items"]]  # nothing stored
    await expect(page.get_by_label("project:deleted", exact=True)).to_be_checked()  # the form is kept
    await page.get_by_role("button", name="Create webhook").click()
    await page.get_by_role("button", name="Send test").click()
    await expect(page.get_by_test_id("test-result")).to_contain_text("answered 200")
    hook = await create_webhook(server.api, receiver.url("/broken"), name="Broken receiver")
    receiver.reply("/broken", then=Reply(status=500))
    await page.goto(f"/ui/webhooks/{hook['uuid']}")
    await page.get_by_role("button", name="Send test").click()
    await expect(page.get_by_test_id("test-result")).to_contain_text("failed")
    await expect(page.get_by_test_id("test-result")).to_contain_text("500")


async def test_a_test_from_the_form_keeps_what_was_typed_and_the_secret_it_was_signed_with(
    page: Page, server: Server, verifying_receiver: VerifyingReceiver, tmp_path: Path
) -> None:
    typed_headers = "X-Team: blue\nAuthorization: Bearer typed-token"
    await fill_new_webhook(page, "Verified receiver", verifying_receiver.url("/console"), "project:created")
    await page.locator("#headers").fill(typed_headers)
    await page.get_by_role("button", name="Send test").click()
    # No secret typed: Herald made one, and the receiver (given another) refused the signature.
    result, answer = page.get_by_test_id("test-result"), page.get_by_test_id("test-response")
    await expect(result).to_contain_text("The receiver answered HTTP 400 in")
    await expect(answer).to_have_text(re.compile(r"^<b>refused</b>: "))  # its markup shown as text
    made = await page.get_by_label("Signing secret").input_value()
    assert made.startswith("whsec_")
    await expect(page.get_by_test_id("secret-made")).to_be_visible()
    await expect(page.locator("#headers")).to_have_value(typed_headers)
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Verified receiver")
    await expect(page.get_by_label("project:created", exact=True)).to_be_checked()
    into = Path(os.environ.get(SCREENSHOTS_DIR_VAR) or tmp_path)
    into.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        # The window's worth only: the result, and the secret it was signed with, above the rest.
        await page.screenshot(path=str(into / f"webhook-form-tested-{label}.png"))
    await page.set_viewport_size({"width": 1280, "height": 900})

    verifying_receiver.secret = made  # the receiver is given the secret the form shows
    await page.get_by_role("button", name="Send test").click()
    await expect(result).to_contain_text("The receiver answered 200")
    await expect(answer).to_have_text("verified")
    await expect(page.get_by_label("Signing secret")).to_have_value(made)
    await page.get_by_role("button", name="Create webhook").click()
    await expect(page.get_by_test_id("secret")).to_have_text(made)  # the webhook signs as the test did
    await expect(page.get_by_test_id("header-names")).to_have_text("Authorization, X-Team")
    await api_json(await server.api.post("/api/v1/events", json=event_of("project:created")), 202)

    def deliveries() -> list[dict[str, str]]:
        verified = verifying_receiver.verified
        return [headers for _, headers in verified if headers["herald-event-type"] == "project:created"]

    async def delivered() -> bool:
        return bool(deliveries())

    await eventually(delivered)
    [headers] = deliveries()
    assert (headers["x-team"], headers["authorization"]) == ("blue", "Bearer typed-token")


async def test_disable_enable_rotate_and_delete(page: Page, server: Server, receiver: Receiver) -> None:
    hook = await create_webhook(server.api, receiver.url("/switch"), name="Switched around")
    await page.goto(f"/ui/webhooks/{hook['uuid']}")
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("button", name="Enable")).to_be_visible()
    assert not await webhook_enabled(server, hook["uuid"])
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("button", name="Disable")).to_be_visible()
    assert await webhook_enabled(server, hook["uuid"])

    await page.get_by_role("button", name="Rotate secret").click()
    rotated = (await page.get_by_test_id("secret").inner_text()).strip()
    assert rotated.startswith("whsec_")
    assert rotated != hook["secret"]

    await page.get_by_role("button", name="Delete").click()  # the dialog is dismissed: a page asks
    await expect(page.get_by_role("heading", name="Delete “Switched around”?")).to_be_visible()
    await page.get_by_role("button", name="Delete").click()
    await page.wait_for_url("**/ui/webhooks?done=deleted")
    await expect(page.get_by_test_id("webhook-row").filter(has_text="Switched around")).to_have_count(0)
    assert (await server.api.get(f"/api/v1/subscribers/{hook['uuid']}")).status_code == 404


async def test_delete_confirmed_in_the_dialog_deletes_at_once(page: Page, server: Server) -> None:
    hook = await create_webhook(server.api, HOOK_URL, name="Gone at once")
    await page.goto(f"/ui/webhooks/{hook['uuid']}")
    questions: list[str] = []

    async def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await page.get_by_role("button", name="Delete").click()
    await page.wait_for_url("**/ui/webhooks?done=deleted")
    assert questions == ["Delete the webhook “Gone at once”? Its pending deliveries are cancelled."]
    assert (await server.api.get(f"/api/v1/subscribers/{hook['uuid']}")).status_code == 404


async def test_redeliver_sends_again_and_adds_an_attempt(
    page: Page, server: Server, receiver: Receiver
) -> None:
    subscriptions = [{"event_type": "project:updated"}]
    url = receiver.url("/again")
    hook = await create_webhook(server.api, url, name="Redelivered", subscriptions=subscriptions)
    await api_json(await server.api.post("/api/v1/events", json=event_of("project:updated")), 202)
    await receiver.wait_for(1, "/again")
    query = f"/api/v1/deliveries?subscriber_uuid={hook['uuid']}"

    async def delivered() -> bool:
        listed = await api_json(await server.api.get(query), 200)
        return [item["status"] for item in listed["items"]] == ["delivered"]

    # The receiver has the request before the outcome is written; Redeliver waits for the outcome.
    await eventually(delivered)
    [delivery] = (await api_json(await server.api.get(query), 200))["items"]
    await page.goto(f"/ui/deliveries/{delivery['uuid']}")
    attempts = page.get_by_test_id("attempt-row")
    await until_count(page, attempts, 1)
    await page.get_by_role("button", name="Redeliver").click()
    await expect(page.get_by_role("status")).to_contain_text("Redelivery scheduled")
    [_, again] = await receiver.wait_for(2, "/again")
    assert again.attempt == 2
    await until_count(page, attempts, 2)


async def test_an_event_holding_a_script_is_shown_as_text(page: Page, server: Server) -> None:
    body = event_of("project:created")
    body["project"]["name"] = "<script>window.pwned = true</script>"
    event = await api_json(await server.api.post("/api/v1/events", json=body), 202)
    await page.goto("/ui/events")
    await page.get_by_label("Type", exact=True).fill("project:*")
    await page.get_by_role("button", name="Filter").click()
    row = page.get_by_test_id("event-row").filter(has_text="<script>window.pwned = true</script>")
    await expect(row).to_have_count(1)
    await row.get_by_role("link").click()
    assert page.url.endswith(f"/ui/events/{event['uuid']}")
    await expect(page.locator("#payload")).to_contain_text('"name": "<script>window.pwned = true</script>"')
    assert await page.evaluate("window.pwned === undefined")


async def test_live_refresh_brings_new_deliveries_without_reloading(page: Page, server: Server) -> None:
    subscriptions = [{"event_type": "project:pipeline:deleted"}]
    hook = await create_webhook(server.api, HOOK_URL, name="Live", subscriptions=subscriptions)
    await page.goto(f"/ui/deliveries?webhook={hook['uuid']}")
    rows = page.get_by_test_id("delivery-row")
    await expect(rows).to_have_count(0)
    await api_json(await server.api.post("/api/v1/events", json=event_of("project:pipeline:deleted")), 202)
    await page.get_by_label("Live refresh").check()
    await expect(rows).to_have_count(1)
    await expect(page.get_by_label("Webhook")).to_have_value(hook["uuid"])  # the page itself stayed
