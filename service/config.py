"""Herald's settings: every knob is an environment variable prefixed ``HERALD_``."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.keyring import parse_keys

Scope = Literal["admin", "ingest"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_seconds(text: str) -> float:
    """Parse ``<number><ms|s|m|h|d>`` (e.g. ``5s``, ``250ms``, ``2h``) into seconds."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected <number><ms|s|m|h|d>, e.g. 5s or 2h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """Parse a comma list of durations (the waits after attempts 1, 2, ...) into seconds."""
    parts = [part for part in text.split(",") if part.strip()]
    return tuple(parse_duration_seconds(part) for part in parts)


@dataclass(frozen=True)
class ApiKey:
    scope: Scope
    key: str


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """Parse ``scope:key,...``; a malformed entry raises ``ValueError`` (Herald refuses to start)."""
    keys: list[ApiKey] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        scope, sep, key = entry.partition(":")
        if not sep or scope not in ("admin", "ingest") or not key.strip():
            # Never echo the entry: it holds a secret.
            raise ValueError(
                f"HERALD_API_KEYS entry #{len(keys) + 1} is malformed: "
                "expected scope:key with scope admin or ingest"
            )
        keys.append(ApiKey(scope="admin" if scope == "admin" else "ingest", key=key.strip()))
    return tuple(keys)


def find_api_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The configured key equal to ``presented``, compared in constant time against every key."""
    found: ApiKey | None = None
    candidate = presented.encode()
    for key in keys:
        if hmac.compare_digest(key.key.encode(), candidate):
            found = key
    return found


class Settings(BaseSettings):
    """All of Herald's configuration (docs/operations.md, "Settings")."""

    model_config = SettingsConfigDict(
        env_prefix="HERALD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str | None = None
    data_dir: Path = Path("./.herald")
    api_keys: Annotated[str, NoDecode] = ""
    secrets_keys: Annotated[str, NoDecode] = Field(default="", repr=False)
    dispatcher_enabled: bool = True
    delivery_concurrency: int = Field(default=256, ge=1, le=10_000)
    delivery_per_subscriber_concurrency: int = Field(default=16, ge=1, le=10_000)
    delivery_timeout_seconds: float = Field(default=15.0, gt=0)
    retry_schedule: str = "5s,5m,30m,2h,5h,10h,10h"
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    disable_after_seconds: float = Field(default=432_000.0, gt=0)
    # The attempt number whose failure reports a delivery ``herald:delivery:failing`` (once).
    failing_after_attempts: int = Field(default=3, ge=1, le=1000)
    # The circuit breaker per webhook (docs/delivery.md, "The circuit"): this many consecutive
    # failed attempts open it; the first probe goes this long after, the wait doubling per failed
    # probe up to the maximum.
    circuit_failures: int = Field(default=5, ge=1, le=1000)
    circuit_probe_seconds: float = Field(default=5.0, gt=0)
    circuit_probe_max_seconds: float = Field(default=300.0, gt=0)
    secret_rotation_grace_seconds: float = Field(default=86_400.0, ge=0)
    allow_private_destinations: bool = False
    telemetry_url: str | None = None
    telemetry_api_key: str | None = None
    telemetry_disabled: bool = False
    heartbeat_interval_seconds: float = Field(default=900.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    telemetry_batch_size: int = Field(default=100, ge=1, le=10_000)
    telemetry_flush_interval_seconds: float = Field(default=1.0, ge=0)
    migrate_on_start: bool = True
    # The CSP frame-ancestors sources of the portal's pages: who may embed the portal in a frame.
    portal_frame_ancestors: str = "'none'"
    log_format: Literal["text", "json"] = "text"
    # FastAPI's own OpenTelemetry spans and request metrics, for a process whose providers an
    # OpenTelemetry distribution configures (e.g. ``opentelemetry-instrument herald serve``).
    # Off, each request skips the provider lookups (Herald's own metrics are at /metrics).
    opentelemetry: bool = False

    @field_validator("portal_frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: str) -> str:
        # It goes into a header, as one directive: nothing may end it or start another. The
        # keywords are accepted without their quotes too (a .env file's quoting drops them).
        sources = [f"'{s}'" if s in ("none", "self") else s for s in value.split()]
        if not sources or any(ch in value for ch in ";,\r\n") or not value.isprintable():
            raise ValueError(
                "HERALD_PORTAL_FRAME_ANCESTORS must be CSP sources separated by spaces, "
                "e.g. 'none' or https://platform.example.com"
            )
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("HERALD_PORTAL_FRAME_ANCESTORS: 'none' cannot be combined with other sources")
        return " ".join(sources)

    @field_validator("retry_schedule")
    @classmethod
    def _check_retry_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("secrets_keys")
    @classmethod
    def _check_secrets_keys(cls, value: str) -> str:
        parse_keys(value)  # the message names HERALD_SECRETS_KEYS and the entry, never a key
        return value

    @field_validator("database_url", "telemetry_url", "telemetry_api_key")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @cached_property
    def retry_waits_seconds(self) -> tuple[float, ...]:
        """Waits after attempts 1, 2, ...; attempts allowed = 1 + len(waits)."""
        return parse_retry_schedule(self.retry_schedule)

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.retry_waits_seconds)

    @cached_property
    def parsed_api_keys(self) -> tuple[ApiKey, ...]:
        return parse_api_keys(self.api_keys)

    @property
    def telemetry_enabled(self) -> bool:
        return self.telemetry_url is not None and not self.telemetry_disabled
