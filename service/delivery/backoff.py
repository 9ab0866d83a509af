"""How long the delivery loops wait before retrying after consecutive failures."""

from __future__ import annotations

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


def backoff_s(failures: int) -> float:
    """The wait after ``failures`` consecutive failures: 0.1 s doubling up to 5 s."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(failures - 1, 0)))
