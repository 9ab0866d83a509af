"""What a client may make the server hold or wait for before Herald's application sees a request.

uvicorn's httptools protocol sets no limit: a request head of any size is accumulated (httptools
joins the pieces of a long header one read at a time, so its cost grows with the square of the
header's size: a 120 MB header held a whole process for 15 s), and a client may send its head or
its body as slowly as it likes, holding a connection for ever. :class:`LimitedHttpToolsProtocol`
is that protocol with three bounds, enforced before any routing or authentication:

- a request head (request line and headers) over ``max_head_bytes`` is answered 431 and the
  connection closed; the parser is never given more than that many bytes of one head;
- a connection that has not sent a whole head within ``head_timeout_s`` (counted from the
  connection for its first request, from the request's first byte for the next ones on a
  kept-alive connection, whose idle wait stays uvicorn's keep-alive timeout) is closed;
- a request whose body has not arrived within ``body_timeout_s`` of its head is closed.

The same byte bound holds inside a body for what is not body data (chunk framing, trailers),
which httptools accumulates the same way as headers. ``herald serve`` passes the protocol to
uvicorn as its ``http`` option (``service.serving``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.logs import Throttled

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
# After a 431, what the client still sends is read and dropped for this long before the connection
# closes: closing with unread data resets the connection, and a client still sending its head then
# loses the answer (measured: with a cap of 1 MiB on what is dropped, a client sending a 120 MB head
# over loopback never saw its 431). Dropping costs no memory and little time per byte.
LINGER_S = 2.0

# One warning of each kind per interval, however many connections it concerns: a flood of them is
# the attack.
_closed_in_body = Throttled(logger)
_refused_heads = Throttled(logger)
_slow_heads = Throttled(logger)
_slow_bodies = Throttled(logger)


@dataclass(frozen=True)
class HttpLimits:
    """The bounds of :class:`LimitedHttpToolsProtocol`."""

    max_head_bytes: int = MAX_HEAD_BYTES
    head_timeout_s: float = HEAD_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded by :class:`HttpLimits` (see the module's docstring).

    ``_unparsed`` counts the bytes given to the parser since it last finished something (a head,
    a piece of body, a chunk, a message): each read is fed in pieces of at most what is left of
    ``max_head_bytes``, so a connection's first head, or one that starts a read, is refused as
    soon as it passes the bound. What follows something finished inside a piece goes uncounted
    for the rest of that piece, so a head pipelined behind another request, or a trailer, may run
    to twice the bound before it is caught: still a bounded cost.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits = HttpLimits(),
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._unparsed = 0
        self._head_started = False  # a message has begun, its head is not complete
        self._in_body = False  # the head is complete, the message is not
        self._deadline: TimerHandle | None = None  # the head's or the body's, never both
        self._refused = False

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a 431: read and dropped
        self._unset_keepalive_if_required()
        view = memoryview(data)
        while view and not self.transport.is_closing():
            room = self.limits.max_head_bytes + 1 - self._unparsed
            piece, view = view[:room], view[room:]
            self._unparsed += len(piece)
            if not self._feed(piece):
                return
            if self._unparsed > self.limits.max_head_bytes:
                self._refuse()
                return
        # Timers only for what is left unfinished by this read (most requests come in one).
        if self._deadline is None and not self.transport.is_closing():
            if self._head_started:
                self._arm(self.limits.head_timeout_s, self._head_timed_out)
            elif self._in_body:
                self._arm(self.limits.body_timeout_s, self._body_timed_out)

    def _feed(self, piece: memoryview) -> bool:
        """Feed the parser as uvicorn does; False once the connection is done with."""
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return True

    # -- parser callbacks: progress resets the count ------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._unparsed = 0
        self._head_started = False
        self._in_body = True
        self._disarm()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._unparsed = 0
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self._unparsed = 0

    def on_chunk_complete(self) -> None:
        self._unparsed = 0

    def on_message_complete(self) -> None:
        self._unparsed = 0
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    # -- refusals ---------------------------------------------------------------------------

    def _refuse(self) -> None:
        """Over ``max_head_bytes`` without progress: 431 for a head, else the connection closed."""
        self._refused = True
        self._disarm()
        if self._in_body or not (self.cycle is None or self.cycle.response_complete):
            # A body's framing or trailer, or a pipelined head while an answer is being written:
            # no answer of ours can be put on the connection now.
            _closed_in_body.warning(
                "closed a connection from %s: over %d bytes of chunk framing, trailer or pipelined head",
                self._peer(),
                self.limits.max_head_bytes,
            )
            self.transport.close()
            return
        _refused_heads.warning(
            "refused a request head over %d bytes from %s (431)", self.limits.max_head_bytes, self._peer()
        )
        self.transport.write(self._head_too_large())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def _head_too_large(self) -> bytes:
        body = orjson.dumps(
            {
                "detail": f"request head too large: the request line and headers may take at most "
                f"{self.limits.max_head_bytes} bytes"
            }
        )
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                b"x-request-id: " + uuid.uuid4().hex.encode("ascii") + b"\r\n",
                b"\r\n",
                body,
            ]
        )
        return b"".join(content)

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self._head_started:
            # Nothing sent: a browser's speculative connection, as often as not.
            logger.debug(
                "closed a connection from %s: nothing sent for %g s", self._peer(), self.limits.head_timeout_s
            )
            self.transport.close()
            return
        _slow_heads.warning(
            "closed a connection from %s: no whole request head within %g s",
            self._peer(),
            self.limits.head_timeout_s,
        )
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self.flow.read_paused:
            # Reading is paused by us (the application has not taken the body yet, or a pipelined
            # request waits for the one before): the wait is not the client's.
            self._arm(self.limits.body_timeout_s, self._body_timed_out)
            return
        _slow_bodies.warning(
            "closed a connection from %s: request body not received within %g s",
            self._peer(),
            self.limits.body_timeout_s,
        )
        self.transport.close()

    # -- timers ---------------------------------------------------------------------------------

    def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay_s, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"
