"""When to try a request again, and how long to wait first.

Pure decisions, shared by the sync and the async client; the clients only sleep.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime

import httpx

# Statuses worth another try: Herald (or a proxy in front of it) is overloaded or restarting.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Answers that prove the request was not acted on, so even a non-idempotent one may go again.
NOT_PROCESSED_STATUSES = frozenset({429})
# Errors raised before the request left the machine: safe to retry whatever it was.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Errors where the request may or may not have been acted on: retried when idempotent.
NO_ANSWER_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date).

    ``None`` when absent or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now_s is None else now_s)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, never sooner than the server's ``Retry-After``.

    The n-th retry (n = 0, 1, ...) waits a random time between half and all of
    ``min(backoff_max_s, backoff_base_s * 2**n)`` (``jitter`` returns a number in [0, 1)).
    A ``Retry-After`` longer than ``retry_after_max_s`` is not waited for: the error is
    raised instead.
    """

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 60.0
    jitter: Callable[[], float] = random.random

    def backoff_s(self, retry: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0**retry)
        return ceiling / 2 + self.jitter() * ceiling / 2

    def after_response(self, retry: int, response: httpx.Response, *, idempotent: bool) -> float | None:
        """Seconds to wait before retry number ``retry`` of a request answered with ``response``;
        ``None``: do not retry."""
        status = response.status_code
        if status not in RETRY_STATUSES or retry >= self.max_retries:
            return None
        if not idempotent and status not in NOT_PROCESSED_STATUSES:
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            return self.backoff_s(retry)
        if retry_after > self.retry_after_max_s:
            return None
        return max(retry_after, self.backoff_s(retry))

    def after_error(self, retry: int, error: httpx.TransportError, *, idempotent: bool) -> float | None:
        """Seconds to wait before retry number ``retry`` after ``error``; ``None``: do not retry."""
        if retry >= self.max_retries:
            return None
        if isinstance(error, NOT_SENT_ERRORS) or (idempotent and isinstance(error, NO_ANSWER_ERRORS)):
            return self.backoff_s(retry)
        return None
