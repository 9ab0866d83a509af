"""Imports every table module, so that ``SQLModel.metadata`` knows the whole schema."""

from service.models import (
    console_sessions,
    deliveries,
    delivery_controls,
    event_types,
    events,
    installation,
    operational,
    portal_links,
    subscribers,
    subscriptions,
    telemetry,
)

__all__ = [
    "console_sessions",
    "deliveries",
    "delivery_controls",
    "event_types",
    "events",
    "installation",
    "operational",
    "portal_links",
    "subscribers",
    "subscriptions",
    "telemetry",
]
