"""The buttons of a webhook's page: Send test, Rotate secret, Disable / Enable, Delete, Recover."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.core import subscribers as core
from service.core import webhooks as use_cases
from service.db import read_session
from service.delivery import pings
from service.errors import Conflict
from service.web.context import ViewerDep, read_form
from service.web.pages.common import Problems, parse_time
from service.web.pages.webhooks import webhook_page

router = APIRouter()


@router.post("/webhooks/{uuid}/test")
async def send_test(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    await read_form(request, viewer)
    result = await pings.ping_webhook(viewer.state, viewer.scope, uuid)
    return await webhook_page(viewer, uuid, test_result=result)


@router.post("/webhooks/{uuid}/rotate-secret")
async def rotate_secret(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    await read_form(request, viewer)
    secret = await use_cases.rotate_secret(viewer.state.services(), viewer.scope, uuid)
    grace_h = viewer.state.settings.secret_rotation_grace_seconds / 3600
    notice = f"New secret made. The previous one keeps signing too for {grace_h:g} h."
    return await webhook_page(viewer, uuid, secret=secret, notice=notice)


@router.post("/webhooks/{uuid}/disable")
async def disable(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    await read_form(request, viewer)
    await use_cases.set_enabled(viewer.state.services(), viewer.scope, uuid, False)
    return viewer.redirect(f"/webhooks/{uuid}?done=disabled")


@router.post("/webhooks/{uuid}/enable")
async def enable(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    await read_form(request, viewer)
    await use_cases.set_enabled(viewer.state.services(), viewer.scope, uuid, True)
    return viewer.redirect(f"/webhooks/{uuid}?done=enabled")


@router.get("/webhooks/{uuid}/delete")
async def confirm_delete(viewer: ViewerDep, uuid: UUID) -> Response:
    viewer.scope.require_write()
    async with read_session(viewer.state.sessions) as session:
        webhook = viewer.scope.webhook(await core.get_subscriber(session, uuid))
    return viewer.render("webhook_delete.html", section="webhooks", webhook=webhook)


@router.post("/webhooks/{uuid}/delete")
async def delete(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    form = await read_form(request, viewer)
    if form.get("confirmed") != "yes":  # not confirmed in the browser's dialog: ask on a page
        return await confirm_delete(viewer, uuid)
    await use_cases.delete_webhook(viewer.state.services(), viewer.scope, uuid)
    return viewer.redirect("/webhooks?done=deleted")


@router.post("/webhooks/{uuid}/recover")
async def recover(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    form = await read_form(request, viewer)
    problems = Problems()
    since = parse_time(form.get("since"), "since", problems, "Since")
    until = parse_time(form.get("until"), "until", problems, "Until")
    if since is None and not problems:
        problems.add("since", "Since is needed: the start of the window")
    if since is not None and until is not None and until <= since:
        problems.add("until", "Until must be later than Since")
    if problems or since is None:
        return await webhook_page(viewer, uuid, 422, error=" ".join(problems.all()))
    try:
        count = await use_cases.recover(viewer.state.services(), viewer.scope, uuid, since, until)
    except Conflict as exc:
        return await webhook_page(viewer, uuid, 409, error=exc.detail)
    noun = "delivery is" if count == 1 else "deliveries are"
    return await webhook_page(viewer, uuid, notice=f"{count} failed {noun} due again now.")
