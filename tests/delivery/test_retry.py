"""Retry decisions: schedule with jitter, Retry-After, final outcomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from service.config import parse_retry_schedule
from service.delivery.retry import (
    Delivered,
    Failed,
    Gone,
    Outcome,
    Retry,
    decide,
    jittered,
    parse_retry_after,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WAITS = parse_retry_schedule("5s,5m,30m,2h,5h,10h,10h")


def _decide(
    attempt: int, status: int | None = 500, *, error: str | None = None, retry_after: str | None = None
) -> Outcome:
    return decide(
        attempt_number=attempt,
        status_code=status,
        error=error,
        retry_after=retry_after,
        waits=WAITS,
        now=NOW,
        rng=random.Random(7),
    )


def test_failed_attempts_walk_the_schedule_with_jitter_then_fail() -> None:
    rng = random.Random(42)
    for attempt, wait_s in enumerate(WAITS, start=1):
        outcome = decide(
            attempt_number=attempt,
            status_code=500,
            error=None,
            retry_after=None,
            waits=WAITS,
            now=NOW,
            rng=rng,
        )
        assert isinstance(outcome, Retry)
        assert 0.8 * wait_s <= outcome.wait_s <= 1.2 * wait_s
        assert outcome.at == NOW + timedelta(seconds=outcome.wait_s)
        assert outcome.reason == "HTTP 500"
    assert _decide(len(WAITS) + 1) == Failed("HTTP 500")
    # Redeliveries keep counting: any attempt past the schedule is the last one.
    assert _decide(len(WAITS) + 5, error="connection refused", status=None) == Failed("connection refused")


def test_jitter_stays_within_twenty_percent_and_varies() -> None:
    rng = random.Random(1)
    values = [jittered(100.0, rng) for _ in range(1000)]
    assert all(80.0 <= value <= 120.0 for value in values)
    assert max(values) - min(values) > 30.0


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert _decide(1, status) == Delivered()


def test_410_is_gone_even_on_the_first_attempt() -> None:
    assert _decide(1, 410) == Gone("HTTP 410 Gone")


@pytest.mark.parametrize("status", [301, 302, 307, 400, 401, 404, 422, 500, 502])
def test_other_non_2xx_answers_are_retried(status: int) -> None:
    outcome = _decide(1, status)
    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith(f"HTTP {status}")


def test_redirect_reason_says_redirects_are_not_followed() -> None:
    outcome = _decide(2, 302)
    assert isinstance(outcome, Retry)
    assert outcome.reason == "HTTP 302 (redirects are not followed)"


def test_errors_without_answer_are_retried_with_their_reason() -> None:
    outcome = _decide(1, None, error="timeout after 15s")
    assert isinstance(outcome, Retry)
    assert outcome.reason == "timeout after 15s"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_replaces_the_step_wait(status: int) -> None:
    outcome = _decide(1, status, retry_after="120")
    assert isinstance(outcome, Retry)
    assert outcome.wait_s == 120.0
    assert outcome.at == NOW + timedelta(seconds=120)


def test_retry_after_date_replaces_the_step_wait() -> None:
    outcome = _decide(3, 503, retry_after=format_datetime(NOW + timedelta(minutes=7), usegmt=True))
    assert isinstance(outcome, Retry)
    assert outcome.wait_s == 420.0


def test_retry_after_is_ignored_on_other_statuses() -> None:
    outcome = _decide(1, 500, retry_after="3600")
    assert isinstance(outcome, Retry)
    assert outcome.wait_s <= 6.0


def test_429_without_retry_after_uses_the_schedule() -> None:
    outcome = _decide(2, 429)
    assert isinstance(outcome, Retry)
    assert 240.0 <= outcome.wait_s <= 360.0


def test_retry_after_does_not_extend_the_number_of_attempts() -> None:
    assert _decide(len(WAITS) + 1, 429, retry_after="10") == Failed("HTTP 429")


def test_empty_schedule_allows_one_attempt() -> None:
    outcome = decide(
        attempt_number=1,
        status_code=500,
        error=None,
        retry_after=None,
        waits=(),
        now=NOW,
        rng=random.Random(),
    )
    assert outcome == Failed("HTTP 500")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 30 ", 30.0),
        ("86400", 86400.0),
        ("999999999999999999999", 86400.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Wed, 01 Jan 2025 12:01:30 GMT", 90.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        (format_datetime(NOW + timedelta(days=3), usegmt=True), 86400.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Wed, 99 Foo 2025 99:99:99 GMT", None),
        ("٣", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
