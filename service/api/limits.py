"""Request bodies, checked before a route reads them: their encoding, their size, their UTF-8."""

from __future__ import annotations

import codecs

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.responses import json_response

BATCH_PATH = "/api/v1/events/batch"
# Every body under this prefix is JSON text, which is UTF-8 (RFC 8259).
JSON_API_PREFIX = "/api/"
BODYLESS_METHODS = ("GET", "HEAD", "OPTIONS", "DELETE")
IDENTITY = b"identity"
# UTF-8 is checked a slice at a time, so that the check holds no decoded copy of a whole body.
UTF8_SLICE_BYTES = 64 * 1024
SHOWN_HEADER_CHARS = 40


class BodySizeLimit:
    """Refuses a body before a route reads it (and buffers it):

    - 415 for a ``Content-Encoding`` other than ``identity`` (nothing is decompressed);
    - 413 for a body over the limit: ``max_batch_bytes`` for a batch, ``max_event_bytes`` for any
      other request. The declared ``Content-Length`` is checked first; a chunked body is counted
      as it arrives and reading stops once it is over, so no more than the limit is ever held;
    - 422 for a JSON API body that is not UTF-8, naming the byte where it stops being UTF-8.
    """

    def __init__(self, app: ASGIApp, max_event_bytes: int, max_batch_bytes: int) -> None:
        self.app = app
        self.max_event_bytes = max_event_bytes
        self.max_batch_bytes = max_batch_bytes

    def _limit(self, path: str) -> int:
        return self.max_batch_bytes if path.rstrip("/") == BATCH_PATH else self.max_event_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        refusal = _refused_by_headers(scope["headers"], limit)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _too_large(limit)(scope, receive, send)
            return
        if body is None:
            return  # the client left
        if scope["path"].startswith(JSON_API_PREFIX):
            problem = utf8_problem(body)
            if problem is not None:
                error = {"loc": ["body"], "msg": problem, "type": "json_invalid"}
                await json_response({"detail": [error]}, 422)(scope, receive, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, None if the client left; :class:`_TooLarge` as soon as it is over ``limit``.

    A function of its own, so that the list of chunks is gone once they are joined.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _refused_by_headers(headers: list[tuple[bytes, bytes]], limit: int) -> Response | None:
    """415 for an encoded body, 413 for a declared length over ``limit``; else None."""
    for name, value in headers:
        if name == b"content-encoding":
            codings = [token.strip().lower() for token in value.split(b",")]
            if any(coding not in (IDENTITY, b"") for coding in codings):
                shown = value.decode("latin-1")[:SHOWN_HEADER_CHARS]
                return json_response(
                    {
                        "detail": f"Content-Encoding {shown!r} is not supported: "
                        "send the body uncompressed (identity)"
                    },
                    415,
                )
        elif name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0  # the HTTP server refuses a malformed length before we see it
            if declared > limit:
                return _too_large(limit)
    return None


def _too_large(limit: int) -> Response:
    return json_response({"detail": f"request body too large: the limit is {limit} bytes"}, 413)


def utf8_problem(body: bytes) -> str | None:
    """Where ``body`` stops being UTF-8, in words; None when it is UTF-8."""
    if body.isascii():
        return None
    view = memoryview(body)
    position = 0
    while position < len(body):
        end = position + UTF8_SLICE_BYTES
        try:
            # Not final before the end: a sequence cut by the slice is left for the next one.
            _, consumed = codecs.utf_8_decode(view[position:end], "strict", end >= len(body))
        except UnicodeDecodeError as exc:
            offset = position + exc.start
            return (
                f"invalid UTF-8 at byte offset {offset} of the body (byte 0x{body[offset]:02x}: {exc.reason})"
            )
        position += consumed
    return None
