"""What the lifespan builds and the routes use: reached through ``app.state.herald``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.common.secretbox import SecretBox
from service.config import Settings
from service.core.analytics import Anonymizer
from service.core.custom_schemas import SchemaCache
from service.core.webhooks import Services

if TYPE_CHECKING:
    from service.db import EmbeddedPostgres
    from service.delivery.http import HttpClients


class DispatcherHandle(Protocol):
    """What the rest of the app needs to know of the dispatcher."""

    def is_alive(self) -> bool: ...


@dataclass
class Installation:
    """This installation's identity, read once from the database at start-up."""

    installation_id: UUID
    anonymizer: Anonymizer
    analytics_subscriber_uuid: UUID


@dataclass
class HeraldState:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    installation: Installation
    http: HttpClients
    """Shared HTTP clients (webhook deliveries and test pings)."""
    secrets: SecretBox
    """Encrypts and decrypts the webhook secrets at rest (HERALD_SECRETS_KEYS)."""
    embedded: EmbeddedPostgres | None = None
    dispatcher: DispatcherHandle | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    custom_schemas: SchemaCache = field(default_factory=SchemaCache)
    """The compiled schemas of custom event types, checked against the database at each use."""

    def services(self) -> Services:
        """What the use cases (``service.core.webhooks``) use of this state."""
        return Services(self.sessions, self.settings, self.secrets)
