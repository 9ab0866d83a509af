"""Per-request context: a request id (``x-request-id`` in and out, on every log record), the time
of the last API call that was not a probe or a scrape (``app.state.last_api_activity``), and the
answer to an error nothing else handled: a short 500 that carries the request id, the traceback
going to the log only."""

from __future__ import annotations

import logging
import re
import time
import uuid

import orjson
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import request_id_var

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only when it is short and plain, so it is safe in logs and headers.
_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:+/=-]{1,128}$")
# Probes and scrapes are not activity (the telemetry heartbeat reports real use only).
INACTIVE_PREFIXES = ("/health/", "/metrics")
INTERNAL_ERROR_DETAIL = "Internal server error: the log has the details under this request's x-request-id"


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
        except Exception:
            # Answered here rather than by Starlette's outermost handler, which runs after this
            # middleware and so would answer without the request id.
            logger.exception("unhandled error", extra={"method": scope["method"], "path": path})
            if status:  # the answer has begun: all that is left is to drop the connection
                raise
            await send_with_id(_internal_error_start())
            await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
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


_INTERNAL_ERROR_BODY = orjson.dumps({"detail": INTERNAL_ERROR_DETAIL})


def _internal_error_start() -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode("ascii")),
        ],
    }
