"""Secrets at rest: the start-up key check, the sealing of plaintext secrets, the rotation.

Every webhook secret (``secret``, ``previous_secret``) and the custom ``headers`` are SecretBox
tokens bound to their row and column (``service.models.subscribers.secret_context``). The
``installation.secrets_canary`` is a token of a fixed text: a process whose keys do not open it
(or a sample secret, or a sample set of headers) was given other keys than the ones the database
was written with, and refuses to start.

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

# The encrypted columns of a webhook: both secrets and the custom headers (one token per column).
SEALED_COLUMNS = ("secret", "previous_secret", "headers")
_STALE = " OR ".join(f"{column} NOT LIKE :prefix" for column in SEALED_COLUMNS)

_BATCH_SQL = text(
    f"""
SELECT uuid, {", ".join(SEALED_COLUMNS)} FROM subscribers
WHERE kind = 'webhook' AND ({_STALE})
ORDER BY uuid LIMIT :limit
FOR UPDATE SKIP LOCKED
"""  # noqa: S608  (constant column names; every value is a parameter)
)
_REMAINING_SQL = text(f"SELECT count(*) FROM subscribers WHERE kind = 'webhook' AND ({_STALE})")  # noqa: S608
_UPDATE_SQL = text(
    "UPDATE subscribers SET secret = :secret, previous_secret = :previous_secret, headers = :headers "
    "WHERE uuid = :uuid"
)
# A sample of each column: keys that open the canary must open what the replicas wrote too.
_SAMPLE_SQL = text(
    "(SELECT uuid, 'secret' AS column_name, secret AS stored FROM subscribers "
    "WHERE kind = 'webhook' AND secret LIKE :prefix LIMIT 1) "
    "UNION ALL (SELECT uuid, 'headers', headers FROM subscribers "
    "WHERE kind = 'webhook' AND headers LIKE :prefix LIMIT 1)"
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
    """Refuse (``SecretsKeyMismatch``) keys that do not open the canary, a sample secret and a
    sample set of headers; the first process to start writes the canary (under an advisory lock)."""
    async with transaction(sessions) as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await _check_canary(session, box, rewrite=False)
        samples = (await session.execute(_SAMPLE_SQL, {"prefix": TOKEN_PREFIX + "%"})).all()
        for sample in samples:
            try:
                box.decrypt(sample.stored, secret_context(sample.uuid, sample.column_name))
            except UndecryptableSecret:
                raise SecretsKeyMismatch(f"subscriber {sample.uuid}, {sample.column_name}") from None


async def _reencrypt_batch(session: AsyncSession, box: SecretBox, prefix: str) -> int:
    rows = (await session.execute(_BATCH_SQL, {"prefix": prefix + "%", "limit": BATCH_SIZE})).all()
    for row in rows:
        values: dict[str, UUID | str | None] = {"uuid": row.uuid}
        for column in SEALED_COLUMNS:
            stored = getattr(row, column)
            try:
                values[column] = (
                    None if stored is None else box.reencrypt(stored, secret_context(row.uuid, column))
                )
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
    """Encrypt (with the first key) every secret (or headers) still stored in plain text; the
    number of webhooks sealed."""
    sealed = await _reencrypt_all(sessions, box, TOKEN_PREFIX)
    if sealed:
        logger.info("webhook secrets encrypted at rest", extra={"subscribers": sealed})
    return sealed


async def open_secrets(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """At start: check the keys against the database, then seal what is still plaintext."""
    await check_keys(sessions, box)
    await seal_plaintext(sessions, box)


async def rotate(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Re-encrypt every secret, the headers and the canary with the first key; the subscribers
    rewritten."""
    await check_keys(sessions, box)
    done = await _reencrypt_all(sessions, box, box.current_prefix)
    async with transaction(sessions) as session:
        await _check_canary(session, box, rewrite=True)
    return done
