"""What happens after a webhook attempt: delivered, retried later, failed for good, or gone.

Pure functions of the attempt's outcome, the retry schedule, the clock and a random
source, so the rules (docs/webhooks.md, "Success, failure and retries") are tested without
a server.
Reasons are short human strings stored as ``last_error``: they never carry a URL path,
a query string or a secret (at most ``scheme://host``); the sender's failures are described
by :mod:`service.delivery.http_errors`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

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


def pause_s(status_code: int | None, retry_after: str | None, now: datetime) -> float | None:
    """How long a webhook pauses after this answer: a 429 or 503 with a usable ``Retry-After``
    pauses all of its deliveries (at most 24 h); ``None`` for any other answer."""
    if status_code not in RETRY_AFTER_STATUSES:
        return None
    wait_s = parse_retry_after(retry_after, now)
    return wait_s if wait_s else None


def breaks_circuit(status_code: int | None, retry_after: str | None, now: datetime) -> bool:
    """Whether an attempt counts against its webhook's circuit: no answer (a timeout, a
    connection error), a 5xx, or a 429 without a usable ``Retry-After`` (one with it pauses the
    webhook instead). Any other answer shows the receiver is there."""
    if status_code is None or status_code >= 500:
        return True
    return status_code == 429 and not pause_s(status_code, retry_after, now)


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
    ``error`` says why, e.g. the sender's ``SendFailed`` reason). ``waits`` is the retry schedule:
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
