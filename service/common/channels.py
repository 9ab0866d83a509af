"""PostgreSQL LISTEN/NOTIFY channel names."""

from __future__ import annotations

DELIVERIES_CHANNEL = "herald_deliveries"
"""Notified in every transaction that makes a delivery due now; dispatchers LISTEN on it."""
