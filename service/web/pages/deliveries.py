"""Deliveries: the log (by webhook, status, HTTP status code, time range) and a delivery's page
with every attempt and the Redeliver button."""

from __future__ import annotations

import re
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.core import subscribers as subscriber_reads
from service.core import webhooks as use_cases
from service.core.deliveries import DeliveryFilter, attempts_of, get_delivery, list_deliveries
from service.db import read_session
from service.errors import Conflict, NotFound
from service.models.deliveries import DeliveryStatus
from service.models.subscribers import SubscriberKind
from service.schemas.common import encode_cursor
from service.schemas.deliveries import attempt_out
from service.web.context import Viewer, ViewerDep, read_form
from service.web.pages.common import PAGE_SIZE, Window, WindowDep, parse_uuid, split_page

router = APIRouter()

WEBHOOKS_IN_FILTER = 200
STATUSES = [status.value for status in DeliveryStatus]
_STATUS_CODE = re.compile("[1-5][0-9][0-9]")


async def subscriber_names(viewer: Viewer, uuids: set[UUID]) -> dict[UUID, str]:
    """Names of the subscribers of some deliveries (a deleted one has none)."""
    async with read_session(viewer.state.sessions) as session:
        found = await subscriber_reads.subscribers_by_uuid(session, list(uuids))
    return {s.uuid: s.name for s in found}


def _filters(webhook: str, status: str, code: str, window: Window) -> DeliveryFilter:
    problems = window.problems
    status_value = DeliveryStatus(status) if status in STATUSES else None
    if status and status_value is None:
        problems.add("status", "unknown status")
    # 100 to 599 in ASCII digits: str.isdigit would let "²" or 5000 digits reach int(), which refuses both.
    status_code = int(code) if _STATUS_CODE.fullmatch(code) else None
    if code and status_code is None:
        problems.add("code", "HTTP status must be a number from 100 to 599")
    return DeliveryFilter(
        subscriber_uuid=parse_uuid(webhook, "webhook", problems, "Webhook"),
        status=status_value,
        status_code=status_code,
        since=window.since,
        until=window.until,
    )


@router.get("/deliveries")
async def deliveries(
    viewer: ViewerDep, window: WindowDep, webhook: str = "", status: str = "", code: str = ""
) -> Response:
    owner = viewer.scope.project_uuid
    async with read_session(viewer.state.sessions) as session:
        owned = [] if owner is None else await subscriber_reads.owned_webhooks(session, owner)
        filters = viewer.scope.deliveries(_filters(webhook, status, code, window), owned)
        found = await list_deliveries(session, filters, window.after_seq, PAGE_SIZE + 1)
        rows, more = split_page(found)
        kind = SubscriberKind.WEBHOOK
        hooks = await subscriber_reads.list_subscribers(
            session, kind, None, WEBHOOKS_IN_FILTER, project_uuid=owner
        )
    names = await subscriber_names(viewer, {row.subscriber_uuid for row in rows})
    fragment = viewer.request.headers.get("x-herald-fragment")
    return viewer.render(
        "delivery_rows.html" if fragment else "deliveries.html",
        section="deliveries",
        deliveries=rows,
        names=names,
        webhooks=[h for h in hooks if viewer.scope.sees_webhook(h)],
        statuses=STATUSES,
        values={"webhook": webhook, "status": status, "code": code, **window.inputs()},
        problems=window.problems,
        next_cursor=encode_cursor(rows[-1].seq) if more else None,
    )


async def delivery_page(viewer: Viewer, uuid: UUID, status_code: int = 200, **extra: str | None) -> Response:
    async with read_session(viewer.state.sessions) as session:
        delivery = await get_delivery(session, uuid)
        found = await subscriber_reads.subscribers_by_uuid(session, [delivery.subscriber_uuid])
        subscriber = found[0] if found else None
        if not viewer.scope.is_admin and (subscriber is None or not viewer.scope.sees_webhook(subscriber)):
            raise NotFound(f"delivery {uuid} not found")
        attempts = [attempt_out(row) for row in await attempts_of(session, uuid)]
    return viewer.render(
        "delivery.html",
        status_code=status_code,
        section="deliveries",
        delivery=delivery,
        subscriber=subscriber,
        attempts=attempts,
        notice=extra.get("notice"),
        error=extra.get("error"),
        page_url=f"{viewer.base}/deliveries/{uuid}",
    )


@router.get("/deliveries/{uuid}")
async def delivery(viewer: ViewerDep, uuid: UUID, done: str = "") -> Response:
    notice = "Redelivery scheduled: the delivery is due now." if done == "redelivered" else None
    return await delivery_page(viewer, uuid, notice=notice)


@router.post("/deliveries/{uuid}/redeliver")
async def redeliver(request: Request, viewer: ViewerDep, uuid: UUID) -> Response:
    await read_form(request, viewer)
    try:
        await use_cases.redeliver(viewer.state.services(), viewer.scope, uuid)
    except Conflict as exc:
        return await delivery_page(viewer, uuid, 409, error=f"Cannot redeliver: {exc.detail}.")
    return viewer.redirect(f"/deliveries/{uuid}?done=redelivered")
