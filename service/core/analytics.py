"""Telemetry: the anonymized payload shape and the keyed hash that anonymizes identifiers.

Herald sends every event, completely anonymized, to a PostHog-compatible backend
(DESIGN.md, "Payloads"). Identifiers are replaced by a keyed hash (HMAC-SHA256 with a
per-installation secret): stable within one installation, so events about the same
project can be related, and meaningless outside it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class TelemetryData(BaseModel):
    """An anonymized telemetry payload, as in the seed's analytics module.

    ``event_properties`` holds the event's anonymized entity data, nested like the
    notification payload; ``derived_properties`` holds numbers computed from it (counts,
    durations).
    """

    model_config = ConfigDict(extra="forbid")

    event_properties: dict[str, Any]
    derived_properties: dict[str, Any]


class Anonymizer:
    """Keyed hash of identifiers: ``anonymizer(uuid)`` → 32 hex characters.

    Built from the installation's secret key. UUIDs are hashed in their canonical form, so
    ``UUID(x)``, ``str(UUID(x))`` and an upper-case spelling of it give the same hash.
    """

    HEX_CHARS = 32

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the anonymizer key must not be empty")
        self._key = key

    def _digest(self, value: UUID | str) -> bytes:
        return hmac.new(self._key, _canonical(value).encode("utf-8"), hashlib.sha256).digest()

    def __call__(self, value: UUID | str) -> str:
        """The keyed hash of ``value`` as lower-case hex (128 bits)."""
        return self._digest(value).hex()[: self.HEX_CHARS]

    def as_uuid(self, value: UUID | str) -> UUID:
        """The keyed hash of ``value`` formatted as a UUID (version 8, "custom").

        Used as the telemetry backend's deduplication id: stable across retries of the same
        event, unrelated to the event's real uuid outside this installation.
        """
        number = int.from_bytes(self._digest(value)[:16], "big")
        number &= ~(0xF << 76)  # version nibble
        number |= 8 << 76
        number &= ~(0x3 << 62)  # RFC 4122 variant bits: 0b10
        number |= 0x2 << 62
        return UUID(int=number)


def _canonical(value: UUID | str) -> str:
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(value))
    except ValueError:
        return value
