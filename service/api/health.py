"""Liveness and readiness probes (open, no API key)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text

from service.api.deps import StateDep
from service.api.responses import json_response
from service.migrations import head_revision

router = APIRouter(prefix="/health", tags=["health"])

READY_CHECK_TIMEOUT_S = 2.0


@router.get("/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Ready to serve: database reachable and migrated, dispatcher running where enabled",
    responses={503: {"description": "Not ready; `checks` says why."}},
)
async def ready(state: StateDep) -> Response:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_S), state.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        checks["database"] = "ok"
        head = head_revision()
        checks["migrations"] = "ok" if version == head else f"at {version}, expected {head}"
    except Exception as exc:  # any failure to reach the database means "not ready"
        checks["database"] = f"unavailable ({type(exc).__name__})"
    dispatcher = state.dispatcher
    if dispatcher is not None:
        checks["dispatcher"] = "ok" if dispatcher.is_alive() else "not running"
    ok = all(value == "ok" for value in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
