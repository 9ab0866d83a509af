"""``GET /metrics``: Prometheus text format (open without API keys configured, else ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.deps import StateDep
from service.metrics import Metrics

router = APIRouter(tags=["operations"])


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Events ingested by type family, deliveries by outcome, attempt duration histogram, "
        "delivery queue depth (read at scrape time; left out while the database is unavailable) and "
        "dispatcher in-flight. Open when no API keys are configured, else an `admin` key."
    ),
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
)
async def metrics(state: StateDep, metrics: MetricsDep) -> Response:
    await metrics.refresh(state.engine, state.dispatcher)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
