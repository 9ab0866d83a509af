"""Warnings that repeat with every request during an outage are throttled, not lost."""

from __future__ import annotations

import logging
import time

import pytest

from service.logs import Throttled


def test_a_throttled_warning_is_logged_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("herald.tests.throttled")
    throttled = Throttled(logger, interval_s=0.2)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for _ in range(50):
            throttled.warning("database unavailable: %s", "TimeoutError")
        time.sleep(0.25)
        throttled.warning("database unavailable: %s", "OSError")
        throttled.warning("database unavailable: %s", "OSError")
        time.sleep(0.25)
        throttled.warning("database unavailable: %s", "OSError")
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: TimeoutError",
        "database unavailable: OSError (and 49 more since the last such line)",
        "database unavailable: OSError (and 1 more since the last such line)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
