"""Real HTTP servers on 127.0.0.1 for the client's tests (standard library only).

- :class:`WebhookReceiver` receives Herald's webhooks and checks each one with
  ``verify_webhook``, as a user's receiver would: 204 when it verifies, 400 when not.
- :class:`FlakyProxy` stands between the client and Herald and spoils the first answers
  (replaced by a 503, or by a dropped connection), to test retries end to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx
from herald_client import WebhookVerificationError, verify_webhook

Handle = Callable[[BaseHTTPRequestHandler, bytes], None]


class _Server:
    """A threaded HTTP server on 127.0.0.1 that hands every request to ``handle``."""

    def __init__(self, handle: Handle) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                handle(self, self.rfile.read(length))

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@dataclass(frozen=True)
class Received:
    """One webhook request, and what ``verify_webhook`` made of it."""

    path: str
    headers: list[tuple[str, str]]
    body: bytes
    envelope: dict[str, Any] | None
    error: str | None

    def header(self, name: str) -> str:
        return next(value for key, value in self.headers if key.lower() == name)


class WebhookReceiver(_Server):
    """Verifies each request with ``secrets`` (set them once the webhook exists)."""

    def __init__(self) -> None:
        super().__init__(self._handle)
        self.secrets: list[str] = []
        self.requests: list[Received] = []
        self._arrived = threading.Condition()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = list(handler.headers.items())
        envelope, error = None, None
        try:
            envelope = verify_webhook(self.secrets, headers, body)
        except (WebhookVerificationError, ValueError) as exc:
            error = str(exc)
        with self._arrived:
            self.requests.append(Received(handler.path, headers, body, envelope, error))
            self._arrived.notify_all()
        reply(handler, 400 if error else 204)

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """Block until ``count`` requests arrived; return them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise AssertionError(
                    f"{len(self.requests)} webhook requests after {timeout_s} s, not {count}"
                )
            return list(self.requests)


@dataclass(frozen=True)
class Spoil:
    """How the proxy spoils one answer: Herald's is replaced by ``status`` with ``headers``,
    or the connection is closed without one (``drop``)."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class FlakyProxy(_Server):
    """Forwards every request to Herald; the first answers are spoiled as ``spoils`` say.

    Herald still receives and acts on the spoiled requests: to the client it looks like
    the answer was lost. ``upstream`` records the statuses Herald really answered.
    """

    def __init__(self, target: str, *spoils: Spoil) -> None:
        super().__init__(self._handle)
        self.target = target
        self.spoils = list(spoils)
        self.upstream: list[int] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "content-type")}
        answer = httpx.request(handler.command, self.target + handler.path, content=body, headers=headers)
        with self._lock:
            self.upstream.append(answer.status_code)
            spoil = self.spoils.pop(0) if self.spoils else None
        if spoil is None:
            reply(handler, answer.status_code, answer.content, content_type="application/json")
        elif spoil.drop:
            handler.close_connection = True  # no answer at all
        else:
            reply(handler, spoil.status, b'{"detail": "spoiled by the test proxy"}', **spoil.headers)
