"""What of a URL may be shown in logs, reasons and telemetry start-up lines."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_origin(url: str) -> str:
    """``scheme://host`` of ``url``: never its path, query or credentials (which may hold secrets)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}"
    except ValueError:
        return "<invalid url>"
