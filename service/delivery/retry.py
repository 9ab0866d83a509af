"""What happens after a webhook attempt: delivered, retried later, failed for good, or gone.

Pure functions of the attempt's outcome, the retry schedule, the clock and a random
source, so the rules of API.md ("Deliveries and retries") are tested without a server.
Reasons are short human strings stored as ``last_error``: they never carry a URL path,
a query string or a secret (at most ``scheme://host``).
"""

from __future__ import annotations

import asyncio
import math
import random
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import httpx

from service.common.destinations import DestinationRefused

JITTER_FRACTION = 0.2
RETRY_AFTER_CAP_S = 24 * 3600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE_STATUS = 410


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver answered 2xx: the delivery is done."""


@dataclass(frozen=True, slots=True)
class Retry:
    """The attempt failed; try again at ``at`` (``wait_s`` from now)."""

    at: datetime
    wait_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed and it was the last one allowed: the delivery is dead-lettered."""

    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    """The receiver answered 410: final, and the subscriber is disabled."""

    reason: str


Outcome = Delivered | Retry | Failed | Gone


def jittered(wait_s: float, rng: random.Random) -> float:
    """Return ``wait_s`` spread uniformly over ±20 % so retries of a burst do not stampede."""
    return wait_s * rng.uniform(1.0 - JITTER_FRACTION, 1.0 + JITTER_FRACTION)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds, or ``None`` if unusable.

    Accepts delay-seconds or an HTTP date; the result is never negative and at most 24 h.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text), RETRY_AFTER_CAP_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; the parser leaves "-0000" dates naive.
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    wait_s = (when - now).total_seconds()
    if math.isnan(wait_s):
        return None
    return max(0.0, min(wait_s, RETRY_AFTER_CAP_S))


def status_reason(status_code: int) -> str:
    """Return the failure reason recorded for a non-2xx answer."""
    if 300 <= status_code < 400:
        return f"HTTP {status_code} (redirects are not followed)"
    if status_code == GONE_STATUS:
        return "HTTP 410 Gone"
    return f"HTTP {status_code}"


def decide(
    *,
    attempt_number: int,
    status_code: int | None,
    error: str | None,
    retry_after: str | None,
    waits: Sequence[float],
    now: datetime,
    rng: random.Random,
) -> Outcome:
    """Decide what follows attempt ``attempt_number`` (1-based) of a delivery.

    ``status_code`` is the answer's status, or ``None`` when no answer came (then
    ``error`` says why, e.g. from :func:`describe_error`). ``waits`` is the retry schedule:
    the wait after attempt 1, 2, ...; so ``1 + len(waits)`` attempts are allowed. Attempt
    numbers keep counting across redeliveries, so any number past the schedule is final.
    """
    if status_code is not None and 200 <= status_code < 300:
        return Delivered()
    if status_code == GONE_STATUS:
        return Gone(status_reason(status_code))
    reason = status_reason(status_code) if status_code is not None else error or "no response"
    if attempt_number > len(waits):
        return Failed(reason)
    wait_s = jittered(waits[max(attempt_number, 1) - 1], rng)
    if status_code in RETRY_AFTER_STATUSES:
        # The receiver knows best when it can take the request again.
        asked_s = parse_retry_after(retry_after, now)
        if asked_s is not None:
            wait_s = asked_s
    return Retry(at=now + timedelta(seconds=wait_s), wait_s=wait_s, reason=reason)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _seconds(value_s: float) -> str:
    return f"{value_s:g}s"


def _describe_one(exc: BaseException, timeout_s: float) -> str | None:
    """Describe one link of an exception chain, or ``None`` to look further down."""
    # Order matters: aiohttp's classes inherit from each other and from OSError.
    if isinstance(exc, DestinationRefused):
        return exc.strerror or "destination refused"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, DestinationRefused):
            return exc.os_error.strerror or "destination refused"
        return f"could not resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return "TLS certificate verification failed"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS error"
    if isinstance(exc, aiohttp.ConnectionTimeoutError | httpx.ConnectTimeout):
        return f"connect timeout after {_seconds(timeout_s)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"connection failed: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
        return "connection closed without a complete response"
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError | httpx.TimeoutException):
        return f"timeout after {_seconds(timeout_s)}"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "invalid response from receiver"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    if isinstance(exc, httpx.InvalidURL | aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by receiver"
    return None


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """Return a short reason for an exception raised by an attempt, e.g. ``connection refused``.

    The most specific cause wins: the ``httpx-aiohttp`` transport re-raises aiohttp's
    errors as httpx ones (sometimes under a misleading class, e.g. a refused connection
    as ``ConnectTimeout``), keeping the original as ``__cause__``. Exception messages are
    never copied as they are, since some quote the full URL.
    """
    chain = list(_chain(exc))
    # Our own refusal and aiohttp's precise errors sit at the bottom of the chain.
    for link in reversed(chain):
        if isinstance(link, DestinationRefused | aiohttp.ClientError):
            described = _describe_one(link, timeout_s)
            if described is not None:
                return described
    for link in chain:
        if isinstance(link, asyncio.CancelledError):
            return "cancelled"
        described = _describe_one(link, timeout_s)
        if described is not None:
            return described
    return f"request failed ({type(exc).__name__})"
