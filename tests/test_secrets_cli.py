"""``herald secrets`` and the start-up key check, as real processes on the test database."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import asyncpg
import pytest

from service import keyring
from tests.support.api import create_webhook
from tests.support.app import AppFactory, RunningApp
from tests.support.process import HERALD_BIN, free_port, herald_env
from tests.support.secrets import stored_headers, stored_secrets


def _herald(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HERALD_BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=90
    )


def _serve(database_url: str, tmp_path: Path, keys: str) -> subprocess.CompletedProcess[str]:
    env = herald_env(database_url, HERALD_SECRETS_KEYS=keys, HERALD_DATA_DIR=str(tmp_path))
    return _herald(["serve", "--host", "127.0.0.1", "--port", str(free_port())], env, tmp_path)


def _rotate(database_url: str, keys: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return _herald(["secrets", "rotate"], herald_env(database_url, HERALD_SECRETS_KEYS=keys), tmp_path)


def test_new_key_prints_32_random_bytes_in_url_safe_base64(tmp_path: Path) -> None:
    result = _herald(["secrets", "new-key"], herald_env("postgresql://unused/unused"), tmp_path)
    assert result.returncode == 0
    key = result.stdout.strip()
    assert len(key) == 44
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert keyring.decode_key(key)


def test_serve_refuses_keys_that_cannot_decrypt_the_database(
    herald: RunningApp, database_url: str, tmp_path: Path
) -> None:
    # ``herald`` started with the tests' key: the database holds its canary.
    other = keyring.new_key()
    result = _serve(database_url, tmp_path, other)
    assert result.returncode != 0
    assert "cannot decrypt" in result.stderr
    assert "HERALD_SECRETS_KEYS" in result.stderr
    assert other not in result.stderr + result.stdout


def test_serve_refuses_a_malformed_key_naming_the_variable(database_url: str, tmp_path: Path) -> None:
    bad = "not-a-key-" + "x" * 20
    result = _serve(database_url, tmp_path, f"{keyring.new_key()},{bad}")
    assert result.returncode != 0
    assert "HERALD_SECRETS_KEYS" in result.stderr
    assert bad not in result.stderr + result.stdout


@pytest.mark.slow
async def test_rotate_with_new_and_old_keys_then_the_new_one_alone(
    app_factory: AppFactory, database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    old, new = keyring.new_key(), keyring.new_key()
    async with app_factory(secrets_keys=old) as running:
        headers = [{"Authorization": f"Bearer token-{n}"} for n in range(3)]
        hooks = [await create_webhook(running.client, subscriptions=[], headers=h) for h in headers[:2]]
        hooks.append(await create_webhook(running.client, subscriptions=[]))  # and one without
    before = await db.fetch("SELECT uuid, headers FROM subscribers WHERE headers IS NOT NULL")
    rotated = _rotate(database_url, f"{new},{old}", tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    for hook in hooks:
        assert (await stored_secrets(db, hook["uuid"], keys=new))[0] == hook["secret"]
    assert [await stored_headers(db, hook["uuid"], keys=new) for hook in hooks] == [*headers[:2], {}]
    for row in before:  # every set was sealed again, under the new key
        after = await db.fetchval("SELECT headers FROM subscribers WHERE uuid = $1", row["uuid"])
        assert after != row["headers"]
    # The old key alone no longer opens anything; the new one alone does.
    refused = _rotate(database_url, old, tmp_path)
    assert refused.returncode != 0
    assert "HERALD_SECRETS_KEYS" in refused.stderr
    again = _rotate(database_url, new, tmp_path)
    assert again.returncode == 0, again.stderr
    async with app_factory(secrets_keys=new) as running:
        listed = await running.client.get(f"/api/v1/subscribers/{hooks[0]['uuid']}")
        assert listed.status_code == 200
