"""Running Alembic from Herald (``herald migrate``, ``herald serve`` and the readiness check)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic import command

# pg_advisory_xact_lock key that serializes migrations across replicas ("herald" in ASCII).
MIGRATION_LOCK_KEY = 0x68_65_72_61_6C_64

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Alembic keeps its running environment in module globals: one migration per process at a time
# (the advisory lock in env.py serializes processes).
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` that leaves the application's logging alone."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this build."""
    script = ScriptDirectory(str(PROJECT_ROOT / "alembic"))
    return script.get_current_head()


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str) -> None:
    with _ALEMBIC_LOCK:
        command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; runs in a worker thread (env.py owns its event loop)."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)
