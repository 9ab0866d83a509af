"""Fast JSON answers, including ones that embed stored JSON text verbatim."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi.responses import Response


class JSONBytes(Response):
    """An ``application/json`` response from ready-made bytes."""

    media_type = "application/json"


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``content`` as JSON; also an ASGI app, so that a middleware can answer with it."""
    return JSONBytes(orjson.dumps(content), status_code=status_code, headers=headers)


def raw_page(items: Iterable[str], next_cursor: str | None) -> Response:
    """``{"items": [...], "next_cursor": ...}`` where each item is stored JSON text, kept verbatim."""
    body = b'{"items":[' + ",".join(items).encode() + b'],"next_cursor":' + orjson.dumps(next_cursor) + b"}"
    return JSONBytes(body)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown uuid."},
    409: {"description": "Conflict."},
    413: {"description": "Body over the size limit."},
    422: {"description": "Validation error naming the offending field."},
    503: {"description": "The database is unavailable; retry later."},
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in codes}
