"""Shapes shared by every list endpoint: pagination and cursors."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from service.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (max 500).")]
CursorQuery = Annotated[
    str | None, Query(max_length=200, description="Opaque cursor from a previous page's `next_cursor`.")
]


def encode_cursor(seq: int) -> str:
    """An opaque cursor pointing just past the item with sequence number ``seq``."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The sequence number inside ``cursor``; a malformed cursor is a 422 naming the parameter."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s"):
            raise ValueError
        seq = int(raw[1:])
        if seq < 0:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput.single(["query", "cursor"], "invalid cursor", "value_error") from None
    return seq
