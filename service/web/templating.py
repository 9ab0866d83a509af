"""The Jinja2 environment of the pages: autoescaping everywhere, and the filters they format with."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

# Jinja2 is imported with the first page shown, not by every start of the API.
if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).with_name("templates")

# Status words and the colour class each is shown with.
STATUS_TONES = {
    "delivered": "ok",
    "pending": "wait",
    "delivering": "wait",
    "failed": "bad",
    "cancelled": "off",
    "enabled": "ok",
    "disabled": "off",
    "failing": "bad",
}


def when(moment: datetime | None) -> str:
    """``2026-01-02 03:04:05 UTC`` (empty for none)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stamp(text: str) -> str:
    """An RFC 3339 timestamp (from a payload) as ``when`` shows it; as given when it is not one."""
    try:
        return when(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        return str(text)


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest unit that fits (``just now``, ``5 min ago``, ``3 d ago``)."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or unit == "s":
            amount = int(seconds // size)
            if unit == "s" and amount < 5:
                return "just now"
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return ""  # pragma: no cover


def duration(milliseconds: float | None) -> str:
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


def span(seconds: float | None) -> str:
    """A length of time for people: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def dict_with(values: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**values, key: value}


def pretty_json(value: Any) -> str:
    """``value`` (or JSON text) indented for reading; escaped by the template like any text."""
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def tone(word: str) -> str:
    return STATUS_TONES.get(word, "off")


def query(values: dict[str, Any]) -> str:
    """A query string of the non-empty ``values`` (``?a=1&b=2``, or empty)."""
    kept = {key: value for key, value in values.items() if value not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def percent(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{100 * part / whole:.0f} %"


@cache
def environment() -> Environment:
    """The one environment of the pages, made on first use."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the code
    )
    env.filters.update(
        when=when,
        iso=iso,
        stamp=stamp,
        ago=ago,
        duration=duration,
        span=span,
        pretty_json=pretty_json,
        tone=tone,
        percent=percent,
        dict_with=dict_with,
    )
    env.globals.update(query=query)
    return env
