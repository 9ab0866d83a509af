"""Standard Webhooks signing: secrets, signatures and the headers of a webhook request.

The scheme (https://www.standardwebhooks.com): the signed content is
``"{webhook-id}.{webhook-timestamp}.{body}"``, the key is the base64-decoded part of a
``whsec_`` secret, the signature is ``v1,<base64 HMAC-SHA256>``. During a secret rotation
the request carries two space-separated signatures so a receiver holding either secret
accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import cache
from importlib import metadata

from service.common.secrets import decode_secret


def sign(secret_key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64 HMAC-SHA256>`` signature of ``msg_id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value: one signature per secret, current first.

    ``secrets`` is the current secret, then the previous one while its rotation grace
    period lasts.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    return " ".join(sign(decode_secret(secret), msg_id, timestamp, body) for secret in secrets)


@cache
def user_agent() -> str:
    """Return ``Herald/<version>``, the version of the installed distribution."""
    try:
        version = metadata.version("herald")
    except metadata.PackageNotFoundError:
        # Running from a source tree that was never installed.
        version = "0.0.0"
    return f"Herald/{version}"


def build_headers(
    *,
    secrets: Sequence[str],
    event_uuid: str,
    event_type: str,
    delivery_uuid: str,
    attempt: int,
    timestamp: int,
    body: bytes,
    content_type: str,
) -> dict[str, str]:
    """Return the headers of one webhook attempt (docs/webhooks.md, "The request").

    ``timestamp`` is the Unix time of this attempt in whole seconds, ``attempt`` the
    1-based attempt number (it keeps counting across redeliveries), ``body`` the exact
    bytes that will be sent.
    """
    return {
        "webhook-id": event_uuid,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, event_uuid, timestamp, body),
        "herald-event-type": event_type,
        "herald-delivery-id": delivery_uuid,
        "herald-attempt": str(attempt),
        "user-agent": user_agent(),
        "content-type": content_type,
    }
