"""Logging set-up: human-readable text or one JSON object per line (``HERALD_LOG_FORMAT``)."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# The id of the HTTP request being served (set by ``service.api.middleware.RequestContext``).
request_id_var: ContextVar[str | None] = ContextVar("herald_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is structured data.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRS}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records logged while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extra(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _extra(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return line


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's included) through one handler in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Access logs carry full paths and queries; keep them at warning unless asked for.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request with its full URL at info: webhook URLs may carry tokens.
    for name in ("httpx", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Alembic lists its autogenerate plugins at info each time it is loaded: nothing to act on.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class Throttled:
    """A warning logged at most once per ``interval_s``; the next one says how many were left out.

    For what repeats with every request while it lasts (a database outage answered with 503s):
    one line per interval tells as much as thousands.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last = float("-inf")
        self._left_out = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self._left_out += 1
            return
        self._last = now
        if self._left_out:
            msg, args = f"{msg} (and %d more since the last such line)", (*args, self._left_out)
            self._left_out = 0
        self._logger.warning(msg, *args)
