"""The outbox is the one place a delivery changes state, and it sits below core, delivery and api."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlalchemy import TextClause

from service.outbox import queries
from service.outbox.states import DeliveryStatus

SERVICE = Path(__file__).resolve().parents[2] / "service"
OUTBOX = SERVICE / "outbox"
ALLOWED_IMPORTS = ("service.common", "service.models", "service.schemas", "service.errors", "service.config")


def _sources() -> dict[Path, str]:
    return {path: path.read_text() for path in SERVICE.rglob("*.py")}


def test_only_the_outbox_queries_update_deliveries() -> None:
    writers = {
        path.relative_to(SERVICE).as_posix()
        for path, source in _sources().items()
        if re.search(r"UPDATE\s+deliveries", source, re.IGNORECASE)
    }
    assert writers == {"outbox/queries.py"}


def test_the_outbox_imports_nothing_above_it() -> None:
    for path in OUTBOX.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("service"):
                    assert name == "service.outbox" or name.startswith(
                        ("service.outbox.", *ALLOWED_IMPORTS)
                    ), f"{path.name} imports {name}"


def test_every_status_the_queries_write_is_a_delivery_status() -> None:
    statements = [
        value.text if isinstance(value, TextClause) else value
        for name, value in vars(queries).items()
        if name.isupper() and isinstance(value, TextClause | str)
    ]
    written = {
        literal
        for sql in statements
        for literal in re.findall(r"'([a-z]+)'", sql)
        # Not statuses: kinds, an interval unit, a timestamp, the circuit states.
        if literal not in {"webhook", "analytics", "second", "infinity", "closed", "open"}
    }
    assert written
    assert written <= {status.value for status in DeliveryStatus}
