"""How Herald writes a moment: RFC 3339 in UTC with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with a ``Z`` suffix (``2026-01-02T03:04:05.123456Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
