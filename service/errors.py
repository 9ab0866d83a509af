"""Herald's domain errors; ``service.main`` maps them to HTTP answers in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HeraldError(Exception):
    """Base of every error Herald answers deliberately."""

    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(HeraldError):
    status_code = 404


class Conflict(HeraldError):
    status_code = 409


class PayloadTooLarge(HeraldError):
    status_code = 413


class Unavailable(HeraldError):
    status_code = 503


class InvalidInput(HeraldError):
    """422 with FastAPI's error list: ``[{"loc", "msg", "type"}]``."""

    status_code = 422

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(error.get("msg", "")) for error in errors))
        self.errors = list(errors)

    @classmethod
    def single(cls, loc: Sequence[str | int], msg: str, type_: str = "value_error") -> InvalidInput:
        return cls([{"loc": list(loc), "msg": msg, "type": type_}])
