"""Shapes shared by every list endpoint: pagination and cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol, TypeVar
from uuid import UUID

from fastapi import Query

from service.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1  # sequence numbers are BIGINT

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (max 500).")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="Opaque cursor from a previous page's `next_cursor`.")
]


# One codec for every list: a cursor is a kind letter and ":"-separated fields, URL-safe base64
# without padding. Feeds and deliveries page by sequence number ("s<seq>"), subscribers by
# (created_at, uuid) ("t<microseconds since the epoch>:<uuid hex>").
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode(kind: str, *fields: object) -> str:
    text = kind + ":".join(str(field) for field in fields)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str, count: int) -> list[str]:
    """The fields inside ``cursor``; ``ValueError`` (and friends) when it is not of ``kind``."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not raw.startswith(kind):
        raise ValueError(cursor)
    fields = raw[len(kind) :].split(":")
    if len(fields) != count:
        raise ValueError(cursor)
    return fields


def _invalid_cursor() -> InvalidInput:
    return InvalidInput.single(["query", "cursor"], "invalid cursor", "value_error")


def encode_cursor(seq: int) -> str:
    """An opaque cursor pointing just past the item with sequence number ``seq``."""
    return _encode("s", seq)


def decode_cursor(cursor: str | None) -> int | None:
    """The sequence number inside ``cursor``; a malformed cursor is a 422 naming the parameter."""
    if cursor is None:
        return None
    try:
        (seq_text,) = _decode(cursor, "s", 1)
        seq = int(seq_text)
        if not 0 <= seq <= MAX_SEQ:
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid_cursor() from None
    return seq


def encode_time_cursor(created_at: datetime, uuid: UUID) -> str:
    """An opaque cursor pointing just past the item created at ``created_at`` with ``uuid``."""
    delta = created_at - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _encode("t", micros, uuid.hex)


def decode_time_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The ``(created_at, uuid)`` inside ``cursor``; a malformed cursor is a 422 naming the parameter."""
    if cursor is None:
        return None
    try:
        micros_text, uuid_hex = _decode(cursor, "t", 2)
        return _EPOCH + timedelta(microseconds=int(micros_text)), UUID(hex=uuid_hex)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise _invalid_cursor() from None


class Created(Protocol):
    """A row listed by creation time: what a time cursor points at."""

    @property
    def created_at(self) -> datetime | None: ...

    @property
    def uuid(self) -> UUID: ...


Row = TypeVar("Row", bound=Created)


def time_page(found: Sequence[Row], limit: int) -> tuple[list[Row], str | None]:
    """The first ``limit`` of ``found`` (a query for ``limit + 1``) and the cursor of the next page."""
    page = list(found[:limit])
    last = page[-1] if len(found) > limit else None
    return page, encode_time_cursor(last.created_at, last.uuid) if last and last.created_at else None
