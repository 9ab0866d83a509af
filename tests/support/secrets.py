"""The webhook secrets as Herald stores them: tokens opened with the tests' key."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from service import keyring
from service.common.secretbox import SecretBox
from service.models.subscribers import secret_context
from tests.support.app import TEST_SECRETS_KEY


def box_of(keys: str = TEST_SECRETS_KEY) -> SecretBox:
    """A box with ``keys`` (a ``HERALD_SECRETS_KEYS`` value)."""
    return SecretBox(keyring.parse_keys(keys))


async def stored_secrets(
    db: asyncpg.Connection, subscriber_uuid: Any, keys: str = TEST_SECRETS_KEY
) -> tuple[str | None, str | None]:
    """The current and previous secrets of a webhook, decrypted (``None`` where there is none)."""
    row = await db.fetchrow(
        "SELECT uuid, secret, previous_secret FROM subscribers WHERE uuid = $1", subscriber_uuid
    )
    assert row is not None
    box = box_of(keys)
    opened = [
        None if row[column] is None else box.decrypt(row[column], secret_context(row["uuid"], column))
        for column in ("secret", "previous_secret")
    ]
    return opened[0], opened[1]


async def stored_headers(
    db: asyncpg.Connection, subscriber_uuid: Any, keys: str = TEST_SECRETS_KEY
) -> dict[str, str]:
    """A webhook's custom headers, decrypted (``{}`` when it has none)."""
    row = await db.fetchrow("SELECT uuid, headers FROM subscribers WHERE uuid = $1::uuid", subscriber_uuid)
    assert row is not None
    if row["headers"] is None:
        return {}
    opened: dict[str, str] = json.loads(
        box_of(keys).decrypt(row["headers"], secret_context(row["uuid"], "headers"))
    )
    return opened
