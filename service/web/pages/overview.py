"""The overview: deliveries by outcome over the last 24 h, the queue, the webhooks failing now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from service.core.deliveries import outcomes_by_hour
from service.core.webhook_health import failing_webhooks, last_errors
from service.db import read_session
from service.errors import NotFound
from service.metrics import read_queue
from service.models.subscribers import Subscriber
from service.web.chart import HOURS, hourly_counts, layout
from service.web.context import Viewer, ViewerDep

router = APIRouter()

FAILING_SHOWN = 20


async def _failing(viewer: Viewer, limit: int) -> tuple[list[Subscriber], dict[UUID, str]]:
    async with read_session(viewer.state.sessions) as session:
        failing = await failing_webhooks(session, limit)
        return failing, await last_errors(session, [webhook.uuid for webhook in failing])


@router.get("/")
async def overview(viewer: ViewerDep) -> Response:
    if not viewer.scope.is_admin:
        raise NotFound("no overview here")
    now = datetime.now(UTC)
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    # The day's outcomes are the costly read: the rest runs beside it, on other connections.
    queue_read = asyncio.create_task(read_queue(viewer.state.engine))
    failing_read = asyncio.create_task(_failing(viewer, FAILING_SHOWN))
    async with read_session(viewer.state.sessions) as session:
        rows = await outcomes_by_hour(session, first_hour)
    failing, errors = await failing_read
    queue = await queue_read
    chart = layout(hourly_counts(rows, first_hour), first_hour)
    return viewer.render(
        "overview.html", section="overview", chart=chart, queue=queue, failing=failing, errors=errors, now=now
    )
