"""Herald in-process for tests: settings for a test database, the app with its lifespan running."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.config import Settings
from service.main import create_app
from service.state import HeraldState

# The secrets-at-rest key of every test process (a fixed one: tests share template databases).
TEST_SECRETS_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"herald tests").digest()).decode()


def make_settings(database_url: str | None, **overrides: Any) -> Settings:
    """Test settings: no migrations, dispatcher and telemetry off, private destinations allowed."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "secrets_keys": TEST_SECRETS_KEY,
        "migrate_on_start": False,
        "dispatcher_enabled": False,
        "api_keys": "",
        "telemetry_url": None,
        "allow_private_destinations": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class RunningApp:
    """A started app and an in-process client for it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def state(self) -> HeraldState:
        state: HeraldState = self.app.state.herald
        return state


AppFactory = Callable[..., AbstractAsyncContextManager[RunningApp]]


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[RunningApp]:
    """The app with its lifespan running and an in-process client."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as client:
            yield RunningApp(app=app, client=client)
