"""Imports every table module, so that ``SQLModel.metadata`` knows the whole schema."""

from service.models import (
    deliveries,
    event_types,
    events,
    installation,
    subscribers,
    subscriptions,
    telemetry,
)

__all__ = ["deliveries", "event_types", "events", "installation", "subscribers", "subscriptions", "telemetry"]
