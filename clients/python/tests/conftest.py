"""Fixtures of the client's tests: a real Herald (one process per session), clients of it,
a project of each test's own, and a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from herald_client import AsyncHerald, Herald
from herald_process import HeraldServer, running_herald
from receivers import WebhookReceiver


@pytest.fixture(scope="session")
def herald_server() -> Iterator[HeraldServer]:
    with running_herald() as server:
        yield server


@pytest.fixture
def herald(herald_server: HeraldServer) -> Iterator[Herald]:
    """A sync client with the admin key."""
    with Herald(herald_server.base_url, herald_server.admin_key) as client:
        yield client


@pytest.fixture
async def aherald(herald_server: HeraldServer) -> AsyncIterator[AsyncHerald]:
    """An async client with the admin key."""
    async with AsyncHerald(herald_server.base_url, herald_server.admin_key) as client:
        yield client


@pytest.fixture
def project() -> dict[str, str]:
    """A project of this test alone: its events reach only this test's webhooks."""
    return {"uuid": str(uuid.uuid4()), "name": "demo"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running
