"""Request body size limits, enforced before a route reads (and buffers) the body."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.responses import json_response

BATCH_PATH = "/api/v1/events/batch"
BATCH_FACTOR = 1000


class BodySizeLimit:
    """413 for a body over the limit: ``max_event_bytes`` per request, 1000x that for a batch.

    The declared ``Content-Length`` is checked first; a chunked body is counted as it arrives
    and buffered, so the route never sees more than the limit.
    """

    def __init__(self, app: ASGIApp, max_event_bytes: int) -> None:
        self.app = app
        self.max_event_bytes = max_event_bytes

    def _limit(self, path: str) -> int:
        return self.max_event_bytes * (BATCH_FACTOR if path.rstrip("/") == BATCH_PATH else 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(limit)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> Response:
    return json_response({"detail": f"request body too large: the limit is {limit} bytes"}, 413)
