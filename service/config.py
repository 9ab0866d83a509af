"""Herald's settings: every knob is an environment variable prefixed ``HERALD_``."""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.common.egress import EgressProxy, parse_no_proxy, parse_proxy_url
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


MIN_API_KEY_CHARS = 16
"""A shorter key is allowed, with a warning at start: it could be guessed."""


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """Parse ``scope:key,...``; a malformed entry, or a key given twice, raises ``ValueError``
    (Herald refuses to start). Messages name entries by position, never a key."""
    keys: list[ApiKey] = []
    positions: dict[str, int] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        position = len(keys) + 1
        scope, sep, key = entry.partition(":")
        if not sep or scope not in ("admin", "ingest") or not key.strip():
            raise ValueError(
                f"HERALD_API_KEYS entry #{position} is malformed: "
                "expected scope:key with scope admin or ingest"
            )
        parsed = ApiKey(scope="admin" if scope == "admin" else "ingest", key=key.strip())
        first = positions.setdefault(parsed.key, position)
        if first != position:
            # Which entry wins would be an accident of lookup order (it used to be the last).
            raise ValueError(
                f"HERALD_API_KEYS entries #{first} ({keys[first - 1].scope}) and #{position} "
                f"({parsed.scope}) hold the same key: a key has one scope, give it one entry"
            )
        keys.append(parsed)
    return tuple(keys)


def short_api_keys(keys: tuple[ApiKey, ...]) -> list[int]:
    """The positions (from 1) of the keys shorter than ``MIN_API_KEY_CHARS``."""
    return [position for position, key in enumerate(keys, 1) if len(key.key) < MIN_API_KEY_CHARS]


def find_api_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The configured key equal to ``presented``, compared in constant time against every key."""
    found: ApiKey | None = None
    candidate = presented.encode()
    for key in keys:
        if hmac.compare_digest(key.key.encode(), candidate):
            found = key
    return found


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose ``X-Forwarded-*`` headers are believed: these networks, or every peer."""

    networks: tuple[IPNetwork, ...]
    everyone: bool = False

    def trust(self, host: str | None) -> bool:
        """Whether ``host``, a peer's address, is one of them (never when it is not an address)."""
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_trusted_proxies(text: str) -> TrustedProxies:
    """Parse ``HERALD_FORWARDED_ALLOW_IPS``: comma-separated addresses and CIDR networks, or
    ``*`` (every peer); anything else raises ``ValueError`` naming the entry."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if "*" in entries:
        return TrustedProxies(networks=(), everyone=True)
    networks: list[IPNetwork] = []
    for position, entry in enumerate(entries, 1):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"HERALD_FORWARDED_ALLOW_IPS entry #{position} ({entry!r}) is neither an IP address, "
                "a CIDR network nor *"
            ) from None
    return TrustedProxies(networks=tuple(networks))


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
    # Webhooks whose URL was set in the portal, and the portal's test sends (docs/webhooks.md).
    portal_allow_private_destinations: bool = False
    telemetry_url: str | None = None
    telemetry_api_key: str | None = None
    telemetry_disabled: bool = False
    heartbeat_interval_seconds: float = Field(default=900.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    # A batch's body: four 16 MiB batches at once take ~430 MiB above idle (bench.hardening).
    max_batch_bytes: int = Field(default=16 * 1_048_576, ge=1024)
    # How long a request's body may take to arrive once its head has (a slower one is closed).
    body_timeout_seconds: float = Field(default=30.0, gt=0)
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
    # Behind a reverse proxy: believe X-Forwarded-For/-Proto/-Host from the peers listed in
    # forwarded_allow_ips (``herald serve --proxy-headers --forwarded-allow-ips``).
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    # Every outgoing request (webhooks, test sends, telemetry) through this proxy, except to the
    # hosts and networks of delivery_no_proxy (docs/operations.md, "Egress proxy").
    delivery_proxy_url: str | None = Field(default=None, repr=False)  # may hold a password
    delivery_no_proxy: str = ""

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

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @field_validator("secrets_keys")
    @classmethod
    def _check_secrets_keys(cls, value: str) -> str:
        parse_keys(value)  # the message names HERALD_SECRETS_KEYS and the entry, never a key
        return value

    @field_validator("delivery_proxy_url")
    @classmethod
    def _check_delivery_proxy_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_proxy_url(value)  # the message names the variable, never the value
        return value.strip()

    @field_validator("delivery_no_proxy")
    @classmethod
    def _check_delivery_no_proxy(cls, value: str) -> str:
        parse_no_proxy(value)
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

    @cached_property
    def trusted_proxies(self) -> TrustedProxies:
        return parse_trusted_proxies(self.forwarded_allow_ips)

    @cached_property
    def egress_proxy(self) -> EgressProxy | None:
        """The proxy of every outgoing request, or ``None`` (requests connect directly)."""
        if self.delivery_proxy_url is None:
            return None
        return parse_proxy_url(self.delivery_proxy_url, parse_no_proxy(self.delivery_no_proxy))

    @property
    def telemetry_enabled(self) -> bool:
        return self.telemetry_url is not None and not self.telemetry_disabled
