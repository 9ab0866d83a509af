"""Per-request context: a request id (``x-request-id`` in and out, on every log record) and the time
of the last API call that was not a probe or a scrape (``app.state.last_api_activity``)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import request_id_var

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only when it is short and plain, so it is safe in logs and headers.
_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:+/=-]{1,128}$")
# Probes and scrapes are not activity (the telemetry heartbeat reports real use only).
INACTIVE_PREFIXES = ("/health/", "/metrics")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``x-request-id`` when valid, else a fresh one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _REQUEST_ID_RE.match(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware (no body buffering, no extra task per request)."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state
        state.last_api_activity = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = time.monotonic()
        if not path.startswith(INACTIVE_PREFIXES):
            self.state.last_api_activity = started
        request_id = request_id_from(scope["headers"])
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Debug only: an access line per request is too costly at ingest rates; the path (never
            # the query string, never the body) is all that identifies the request.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "request served",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.monotonic() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)
