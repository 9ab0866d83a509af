"""The overview's chart: webhook deliveries of the last 24 hours by outcome, one stacked bar per
hour, laid out here so the page draws it as ``<svg>`` rectangles (no script).

Horizontal positions are percentages of the plot's width, so the chart fills any screen without
stretching its text; vertical ones are pixels of a plot ``PLOT_HEIGHT`` high.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HOURS = 24
OUTCOMES = ("delivered", "pending", "failed", "cancelled")
# A delivery being attempted right now counts as pending.
_OUTCOME_OF = {"delivering": "pending"}

PLOT_HEIGHT = 180
TOP_PX = 8
AXIS_PX = 22
BAR_SHARE = 0.72
"""Of each hour's slot, the share its bar covers."""


@dataclass(frozen=True)
class Bar:
    x_pct: float
    width_pct: float
    y: float
    height: float
    outcome: str
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    totals: dict[str, int]
    peak: int
    ticks: list[tuple[float, str]]
    """Y positions (px) of the value labels: 0, half the peak, the peak."""
    hour_labels: list[tuple[float, str]]
    """X positions (%) of the hour labels."""
    height: int = PLOT_HEIGHT + AXIS_PX
    baseline: int = PLOT_HEIGHT

    @property
    def empty(self) -> bool:
        return self.peak == 0


def hourly_counts(rows: Iterable[Any], first_hour: datetime) -> list[dict[str, int]]:
    """Rows of ``hour, status, n`` as HOURS dicts of outcome → count, oldest hour first."""
    counts = [dict.fromkeys(OUTCOMES, 0) for _ in range(HOURS)]
    for row in rows:
        index = int((row.hour - first_hour).total_seconds() // 3600)
        if 0 <= index < HOURS:
            outcome = _OUTCOME_OF.get(row.status, row.status)
            if outcome in counts[index]:
                counts[index][outcome] += row.n
    return counts


def _nice_peak(peak: int) -> int:
    # The axis tops out at a round number (1, 2, 2.5 or 5 times a power of ten) at or above the peak.
    magnitude = 1
    while magnitude * 10 <= peak:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= peak:
            return int(step * magnitude)
    return peak  # pragma: no cover


def layout(counts: list[dict[str, int]], first_hour: datetime) -> Chart:
    """Stacked bars for ``counts`` (one dict per hour from ``first_hour``)."""
    peak = max((sum(hour.values()) for hour in counts), default=0)
    top = _nice_peak(peak) if peak else 0
    drawable = PLOT_HEIGHT - TOP_PX
    slot = 100 / HOURS
    bars: list[Bar] = []
    for index, hour in enumerate(counts):
        start = first_hour + timedelta(hours=index)
        y = float(PLOT_HEIGHT)
        for outcome in OUTCOMES:
            count = hour[outcome]
            if not count:
                continue
            height = drawable * count / top
            y -= height
            title = f"{start:%H}:00 to {start + timedelta(hours=1):%H}:00 UTC: {count} {outcome}"
            x = index * slot + slot * (1 - BAR_SHARE) / 2
            bars.append(Bar(x, slot * BAR_SHARE, y, height, outcome, title))
    ticks = [(float(PLOT_HEIGHT), "0")]
    if top:
        ticks += [(PLOT_HEIGHT - drawable / 2, f"{top / 2:,g}"), (float(TOP_PX), f"{top:,}")]
    hour_labels = [
        (index * slot + slot / 2, f"{first_hour + timedelta(hours=index):%H}:00")
        for index in range(0, HOURS, 4)
    ]
    totals = {outcome: sum(hour[outcome] for hour in counts) for outcome in OUTCOMES}
    return Chart(bars=bars, totals=totals, peak=peak, ticks=ticks, hour_labels=hour_labels)
