"""Values from outside that Herald stores or computes with, checked at the door.

Whatever a request carries ends up in PostgreSQL or in arithmetic on times, and both have
limits that ordinary validation does not see: PostgreSQL refuses a NUL character in text and
JSON; a time whose offset pushes it past year 1 or year 9999 in UTC (``0001-01-01T00:00+14:00``)
cannot be converted at all; JSON numbers may be beyond 64 bits, or not finite. Every request
model and query parameter uses the types below, so such a value is a 422 naming its field,
never an error deep in a query.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

NUL_MESSAGE = "must not contain NUL characters"
OUT_OF_RANGE_MESSAGE = "is out of range: it must lie between years 1 and 9999 in UTC"
# What orjson (the JSON writer of every answer and stored payload) writes as an integer.
JSON_INT_MIN, JSON_INT_MAX = -(2**63), 2**64 - 1
JSON_DEPTH_MAX = 128


def nul_free(value: str) -> str:
    """``value``, unless it holds a NUL character (``ValueError``)."""
    if "\x00" in value:
        raise ValueError(f"Text {NUL_MESSAGE}")
    return value


def in_utc(value: datetime) -> datetime:
    """``value`` (an aware time) in UTC, unless it falls outside the years 1-9999 there."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"Datetime {OUT_OF_RANGE_MESSAGE}") from None


def json_problems(value: object, limit: int = 10) -> list[tuple[tuple[str | int, ...], str]]:
    """Where a parsed JSON ``value`` holds what cannot be stored or written back out: NUL
    characters (in keys too), nesting beyond ``JSON_DEPTH_MAX``, integers beyond 64 bits, numbers
    that are not finite. At most ``limit`` ``(path, message)``; iterative, so no input exhausts
    the stack."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[tuple[str | int, ...], object]] = [((), value)]
    while stack and len(found) < limit:
        path, node = stack.pop()
        if len(path) > JSON_DEPTH_MAX:
            found.append((path[:JSON_DEPTH_MAX], f"Value is nested deeper than {JSON_DEPTH_MAX} levels"))
        elif isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in key:
                    found.append(((*path, key[:100]), f"Key {NUL_MESSAGE}"))
                else:
                    stack.append(((*path, key), item))
        elif isinstance(node, list):
            stack.extend(((*path, index), item) for index, item in enumerate(node))
        elif isinstance(node, str):
            if "\x00" in node:
                found.append((path, f"Text {NUL_MESSAGE}"))
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int):
            if not JSON_INT_MIN <= node <= JSON_INT_MAX:
                found.append((path, "Integer is beyond 64 bits"))
        elif isinstance(node, float) and not math.isfinite(node):
            found.append((path, "Number must be finite"))
    return found


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    problems = json_problems(value)
    if problems:
        # Raised inside a validator, these errors join the field's location (["body", "schema", ...]).
        errors = [
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=path, input=None)
            for path, message in problems
        ]
        raise ValidationError.from_exception_data("json", errors)
    return value


NO_NUL = AfterValidator(nul_free)
"""Refuses text holding a NUL character. Last in an ``Annotated`` str, after its length
constraints (``Annotated[str, Field(max_length=100), NO_NUL]``): constraints placed after a
validator are checked on its result, with a vaguer message ("at most 100 items")."""

Moment = Annotated[AwareDatetime, AfterValidator(in_utc)]
"""An RFC 3339 time with an offset, in UTC (so within the years 1-9999 once converted)."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
"""A free JSON object that can be stored and written back out."""
