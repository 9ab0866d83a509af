"""Webhook formats and content types: the names a subscriber is configured with.

The bodies themselves are rendered by ``service.delivery.formats``; this module only holds
the vocabulary (which schemas and core validate against) and the host-based default.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

Format = Literal["standard", "slack", "teams", "discord"]
ContentType = Literal["application/json", "application/x-www-form-urlencoded"]

JSON_CONTENT_TYPE: ContentType = "application/json"
FORM_CONTENT_TYPE: ContentType = "application/x-www-form-urlencoded"

DEFAULT_RATE_LIMITS_PER_MINUTE: dict[Format, int] = {"slack": 60, "teams": 60, "discord": 30}
"""A new webhook's ``rate_limit_per_minute`` when left out: what the chat services take."""


def effective_content_type(fmt: Format, content_type: ContentType) -> ContentType:
    """Return the content type actually sent: chat formats are always JSON."""
    return content_type if fmt == "standard" else JSON_CONTENT_TYPE


def format_for_url(url: str) -> Format:
    """Return the default format for a webhook URL, chosen from its host (docs/webhooks.md)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "standard"
    if host == "hooks.slack.com":
        return "slack"
    if host in ("discord.com", "discordapp.com") and parts.path.startswith("/api/webhooks/"):
        return "discord"
    if host.endswith(".webhook.office.com"):
        return "teams"
    return "standard"
