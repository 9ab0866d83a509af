"""Small helpers the page modules share: reading query values, paging, human messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends

from service.errors import InvalidInput
from service.schemas.common import decode_cursor, decode_time_cursor
from service.schemas.inputs import in_utc

PAGE_SIZE = 50
T = TypeVar("T")


class Problems:
    """What was wrong with a filter or a form, by field, in words for people."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def all(self) -> list[str]:
        return [message for messages in self.by_field.values() for message in messages]


def parse_uuid(text: str, field: str, problems: Problems, label: str) -> UUID | None:
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        problems.add(field, f"{label} must be a uuid")
        return None


def parse_time(text: str, field: str, problems: Problems, label: str) -> datetime | None:
    """A ``datetime-local`` value (read as UTC) or an RFC 3339 time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.add(field, f"{label} must be a date and time, e.g. 2026-01-31T14:00")
        return None
    try:
        return in_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
    except ValueError:
        problems.add(field, f"{label} is out of range once in UTC")
        return None


def local_input(moment: datetime | None) -> str:
    """``moment`` as a ``datetime-local`` input value in UTC."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def cursor_seq(text: str, problems: Problems) -> int | None:
    if not text:
        return None
    try:
        return decode_cursor(text)
    except InvalidInput:
        problems.add("cursor", "that page link is not valid any more; showing the newest")
        return None


def time_cursor(text: str, problems: Problems) -> tuple[datetime, UUID] | None:
    """The position of a list by creation time, from the page's ``cursor`` (``None``: the newest)."""
    try:
        return decode_time_cursor(text or None)
    except InvalidInput:
        problems.add("cursor", "that page link is not valid any more; showing the newest")
        return None


def split_page(rows: Sequence[T], limit: int = PAGE_SIZE) -> tuple[list[T], bool]:
    """The first ``limit`` rows of a query for ``limit + 1``, and whether there are more."""
    return list(rows[:limit]), len(rows) > limit


def error_messages(errors: Sequence[dict[str, Any]]) -> list[str]:
    """FastAPI-style errors as sentences (the field, then the message)."""
    messages = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        where = ".".join(loc)
        messages.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
    return messages


@dataclass
class Window:
    """A log's time range and page, read from the query; what did not parse is in ``problems``."""

    since: datetime | None
    until: datetime | None
    after_seq: int | None
    problems: Problems = field(default_factory=Problems)

    def inputs(self) -> dict[str, str]:
        """The range as the form's ``datetime-local`` fields show it."""
        return {"since": local_input(self.since), "until": local_input(self.until)}


def window(since: str = "", until: str = "", cursor: str = "") -> Window:
    problems = Problems()
    return Window(
        since=parse_time(since, "since", problems, "Since"),
        until=parse_time(until, "until", problems, "Until"),
        after_seq=cursor_seq(cursor, problems),
        problems=problems,
    )


WindowDep = Annotated[Window, Depends(window)]
