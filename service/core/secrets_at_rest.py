"""Secrets at rest: the start-up key check, the sealing of plaintext secrets, the rotation.

Every webhook secret (``secret``, ``previous_secret``) is a SecretBox token bound to its row and
column (``service.models.subscribers.secret_context``). The ``installation.secrets_canary`` is a
token of a fixed text: a process whose keys do not open it (or a sample secret) was given other
keys than the ones the database was written with, and refuses to start.

Re-encryption (start-up sealing of plaintext, ``herald secrets rotate``) goes in batches of
``BATCH_SIZE`` rows, each locked ``FOR UPDATE SKIP LOCKED`` in its own short transaction: an API
call changing a secret (which locks the row ``FOR UPDATE``) either waits for the batch or is
skipped by it and picked up by a later pass, so no concurrent change is lost.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.common.secretbox import TOKEN_PREFIX, SecretBox, UndecryptableSecret
from service.db import transaction
from service.keyring import KEYS_VARIABLE
from service.models.subscribers import secret_context

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
CANARY_CONTEXT = "installation.secrets_canary"
CANARY_TEXT = "herald secrets canary"
# pg_advisory_xact_lock key: "secrets" start-up check (any constant other code does not use).
_LOCK_KEY = 0x48_53_45_43

_MISMATCH = (
    f"the secrets keys ({KEYS_VARIABLE}, or HERALD_DATA_DIR/secrets.key when it is unset) cannot "
    "decrypt the webhook secrets this database holds: they were written with another key. Give "
    f"this process the same {KEYS_VARIABLE} as the replicas that share the database "
    "(docs/operations.md, 'Secrets at rest')"
)

_BATCH_SQL = text(
    """
SELECT uuid, secret, previous_secret FROM subscribers
WHERE kind = 'webhook' AND (secret NOT LIKE :prefix OR previous_secret NOT LIKE :prefix)
ORDER BY uuid LIMIT :limit
FOR UPDATE SKIP LOCKED
"""
)
_REMAINING_SQL = text(
    "SELECT count(*) FROM subscribers "
    "WHERE kind = 'webhook' AND (secret NOT LIKE :prefix OR previous_secret NOT LIKE :prefix)"
)
_UPDATE_SQL = text("UPDATE subscribers SET secret = :secret, previous_secret = :previous WHERE uuid = :uuid")
_SAMPLE_SQL = text(
    "SELECT uuid, secret FROM subscribers WHERE kind = 'webhook' AND secret LIKE :prefix LIMIT 1"
)


class SecretsKeyMismatch(RuntimeError):
    """This process's keys do not open what the database holds (the message names no key)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(_MISMATCH + (f" ({detail})" if detail else ""))


async def _check_canary(session: AsyncSession, box: SecretBox, *, rewrite: bool) -> None:
    canary = (
        await session.execute(text("SELECT secrets_canary FROM installation WHERE id = 1 FOR UPDATE"))
    ).scalar_one()
    if canary is not None:
        try:
            box.decrypt(canary, CANARY_CONTEXT)
        except UndecryptableSecret:
            raise SecretsKeyMismatch("the installation's canary") from None
        if not rewrite or canary.startswith(box.current_prefix):
            return
    sealed = box.encrypt(CANARY_TEXT, CANARY_CONTEXT)
    await session.execute(text("UPDATE installation SET secrets_canary = :c WHERE id = 1"), {"c": sealed})


async def check_keys(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """Refuse (``SecretsKeyMismatch``) keys that open neither the canary nor a sample secret;
    the first process to start writes the canary (under an advisory lock)."""
    async with transaction(sessions) as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await _check_canary(session, box, rewrite=False)
        sample = (await session.execute(_SAMPLE_SQL, {"prefix": TOKEN_PREFIX + "%"})).first()
        if sample is not None:
            try:
                box.decrypt(sample.secret, secret_context(sample.uuid, "secret"))
            except UndecryptableSecret:
                raise SecretsKeyMismatch(f"subscriber {sample.uuid}") from None


async def _reencrypt_batch(session: AsyncSession, box: SecretBox, prefix: str) -> int:
    rows = (await session.execute(_BATCH_SQL, {"prefix": prefix + "%", "limit": BATCH_SIZE})).all()
    for row in rows:
        values: dict[str, UUID | str | None] = {"uuid": row.uuid, "secret": None, "previous": None}
        for column, key in (("secret", "secret"), ("previous_secret", "previous")):
            stored = getattr(row, column)
            if stored is None:
                continue
            try:
                values[key] = box.reencrypt(stored, secret_context(row.uuid, column))
            except UndecryptableSecret:
                raise SecretsKeyMismatch(f"subscriber {row.uuid}") from None
        await session.execute(_UPDATE_SQL, values)
    return len(rows)


async def _reencrypt_all(sessions: async_sessionmaker[AsyncSession], box: SecretBox, prefix: str) -> int:
    done, waits = 0, 0
    while True:
        async with transaction(sessions) as session:
            n = await _reencrypt_batch(session, box, prefix)
        done += n
        if n:
            continue
        async with transaction(sessions) as session:
            remaining = (await session.execute(_REMAINING_SQL, {"prefix": prefix + "%"})).scalar_one()
        if not remaining:
            return done
        waits += 1  # rows locked by a concurrent change: they are taken on a later pass
        await asyncio.sleep(min(0.05 * waits, 1.0))


async def seal_plaintext(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Encrypt (with the first key) every secret still stored in plain text; their number."""
    sealed = await _reencrypt_all(sessions, box, TOKEN_PREFIX)
    if sealed:
        logger.info("webhook secrets encrypted at rest", extra={"subscribers": sealed})
    return sealed


async def open_secrets(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """At start: check the keys against the database, then seal what is still plaintext."""
    await check_keys(sessions, box)
    await seal_plaintext(sessions, box)


async def rotate(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Re-encrypt every secret (and the canary) with the first key; the subscribers rewritten."""
    await check_keys(sessions, box)
    done = await _reencrypt_all(sessions, box, box.current_prefix)
    async with transaction(sessions) as session:
        await _check_canary(session, box, rewrite=True)
    return done
