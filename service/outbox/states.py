"""The outbox's vocabulary: the statuses of a delivery and the reasons its own transitions record.

A delivery's ``last_error`` normally says what its last attempt met (``HTTP 503``, ``connection
refused``: see ``service.delivery.retry``). When the outbox settles a delivery without an attempt,
because of what happened to its subscriber or to telemetry, it records one of the :class:`Reason`
values instead; API clients see them as they are.
"""

from __future__ import annotations

from enum import StrEnum

from service.models.deliveries import DeliveryStatus


class Reason(StrEnum):
    """Why a delivery ended (or was not requeued) without an attempt deciding it."""

    SUBSCRIBER_DISABLED = "subscriber disabled"
    """The subscriber was disabled: its waiting deliveries end ``failed`` (recoverable)."""
    SUBSCRIBER_DELETED = "subscriber deleted"
    """The subscriber was deleted: its unfinished deliveries end ``cancelled``."""
    TELEMETRY_DISABLED = "telemetry disabled"
    """Telemetry was turned off: unsent analytics deliveries end ``cancelled``."""


__all__ = ["DeliveryStatus", "Reason"]
