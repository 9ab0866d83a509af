"""What one HTTP send gives back: the receiver's answer, or the reason it failed.

The contract between the sender (:mod:`service.delivery.http`, which holds the HTTP stack)
and the deliverers (webhooks, telemetry batches) and the API's ``test`` routes, kept apart
so that importing those does not import the HTTP stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What an attempt keeps of the receiver's answer."""

    status_code: int
    retry_after: str | None
    body_excerpt: bytes


class SendFailed(Exception):
    """No answer came; ``reason`` says why in a few words and never quotes the URL's path or query."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unexpected_failure(exc: BaseException) -> str:
    """The reason recorded for a failure no better description fits: its class name only."""
    return f"request failed ({type(exc).__name__})"
