"""Running Alembic from Herald (``herald migrate``, ``herald serve`` and the readiness check).

A start on a database already at head, the usual case, does not load Alembic at all: the head
is read from the revision scripts' own ``revision`` / ``down_revision`` lines, compared with the
database's ``alembic_version``, and Alembic (with Mako, its migration context and a second
engine) only runs when they differ (docs/architecture.md, "Start-up time").
"""

from __future__ import annotations

import ast
import asyncio
import re
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from service.db import CONNECT_TIMEOUT_S, asyncpg_dsn

# Alembic (and Mako under it) is imported when a migration runs, not by every command.
if TYPE_CHECKING:
    from alembic.config import Config

# pg_advisory_xact_lock key that serializes migrations across replicas ("herald" in ASCII).
MIGRATION_LOCK_KEY = 0x68_65_72_61_6C_64

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VERSIONS_DIR = PROJECT_ROOT / "alembic" / "versions"

# A revision script's module-level `revision = "…"` / `down_revision: str | None = …` lines.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)

# Alembic keeps its running environment in module globals: one migration per process at a time
# (the advisory lock in env.py serializes processes).
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` that leaves the application's logging alone."""
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def _script_revisions(text: str) -> tuple[str, set[str]] | None:
    """The ``revision`` of one script and the revisions it follows; None if it does not say."""
    found: dict[str, object] = {}
    for name, value in _REVISION_LINE.findall(text):
        try:
            found[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    revision, down = found.get("revision"), found.get("down_revision")
    if not isinstance(revision, str):
        return None
    follows = {down} if isinstance(down, str) else set(down) if isinstance(down, tuple | list) else set()
    return revision, {str(parent) for parent in follows}


def scripted_head() -> str | None:
    """The one head of the revision scripts, read without Alembic; None when that is not plain
    (a script that does not say, or several heads), for Alembic to decide."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        script = _script_revisions(path.read_text(encoding="utf-8"))
        if script is None:
            return None
        revisions.add(script[0])
        parents |= script[1]
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


@cache  # read once: the scripts do not change under a running process
def head_revision() -> str | None:
    """The newest revision shipped with this build."""
    head = scripted_head()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(PROJECT_ROOT / "alembic")).get_current_head()


async def database_revisions(database_url: str) -> list[str]:
    """The revisions ``alembic_version`` holds (none for a database never migrated)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=CONNECT_TIMEOUT_S)
    try:
        rows = await conn.fetch("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [row["version_num"] for row in rows]


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    from alembic import command

    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str) -> None:
    from alembic import command

    with _ALEMBIC_LOCK:
        command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; Alembic runs in a worker thread (env.py owns its event
    loop), unless the database is already at head."""
    if revision == "head":
        try:
            at_head = await database_revisions(database_url) == [head_revision()]
        except (OSError, asyncpg.PostgresError):  # Alembic will report it, as it always has
            at_head = False
        if at_head:
            return
    await asyncio.to_thread(upgrade_sync, database_url, revision)
