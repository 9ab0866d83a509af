"""The shape of an anonymized telemetry record (built by the event layers, sent by delivery)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class TelemetryData(BaseModel):
    """An anonymized telemetry payload.

    ``event_properties`` holds the event's anonymized entity data, nested like the
    notification payload; ``derived_properties`` holds numbers computed from it (counts,
    durations).
    """

    model_config = ConfigDict(extra="forbid")

    event_properties: dict[str, Any]
    derived_properties: dict[str, Any]
