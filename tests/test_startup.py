"""What each command imports: `herald --help` none of the application, the app no extras that
only development tools install, a start on a migrated database no Alembic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service import migrations
from service.cli import main
from tests.support.process import HERALD_BIN, herald_env


def imported_modules(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """The modules a Python process running ``argv`` imported (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True, check=True
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def packages(modules: set[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


def test_help_imports_neither_the_web_framework_nor_the_orm() -> None:
    loaded = packages(imported_modules([str(HERALD_BIN), "--help"]))
    assert "service" in loaded
    heavy = {"fastapi", "starlette", "sqlalchemy", "sqlmodel", "pydantic", "alembic", "uvicorn", "httpx"}
    assert not heavy & loaded, heavy & loaded
    assert not {"aiohttp", "asyncpg", "jinja2", "asyncio"} & loaded


def test_the_application_imports_no_extra_that_only_development_tools_install() -> None:
    # rich and pygments come with schemathesis and pytest: with them there, httpx would load its
    # command-line client (click, rich, pygments) and Mako its syntax highlighting.
    loaded = imported_modules(["-c", "import service.main"])
    assert "fastapi" in loaded
    assert not {"rich", "pygments", "click"} & packages(loaded)
    # Loaded when used: Alembic to migrate, Jinja2 with the first page, WebSockets never.
    assert not {"alembic", "mako", "jinja2", "websockets"} & packages(loaded)


def test_migrating_a_database_at_head_does_not_load_alembic(database_url: str) -> None:
    loaded = packages(imported_modules([str(HERALD_BIN), "migrate"], env=herald_env(database_url)))
    assert "sqlalchemy" in loaded
    assert "alembic" not in loaded


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations.PROJECT_ROOT / "alembic"))
    assert migrations.scripted_head() == script.get_current_head()


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_serve_refuses_a_worker_count_below_one(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", workers])
    assert exited.value.code == 2
    assert "--workers" in capsys.readouterr().err
