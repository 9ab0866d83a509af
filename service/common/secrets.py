"""The webhook secret codec: ``whsec_`` + standard base64 of 24 to 64 bytes of key material."""

from __future__ import annotations

import base64
import binascii
import secrets as _secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
SECRET_GENERATED_BYTES = 32
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


def generate_secret() -> str:
    """Return a new random ``whsec_`` secret holding 32 bytes of key material."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_GENERATED_BYTES)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_`` secret; ``ValueError`` if it is malformed.

    The error message never quotes the secret: it ends up in 422 answers and logs.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # validate=True refuses characters outside the standard alphabet (url-safe, spaces).
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"secret must be {SECRET_PREFIX!r} followed by standard base64") from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"secret must encode between {SECRET_MIN_BYTES} and {SECRET_MAX_BYTES} bytes, got {len(key)}"
        )
    return key
