"""Verifying the webhooks Herald sends (Standard Webhooks signatures), for receivers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from herald_client._errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
DEFAULT_TOLERANCE = timedelta(minutes=5)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Form fields that hold JSON (the standard format's envelope).
FORM_JSON_FIELDS = ("delivered_for", "event")

HeaderValue = str | bytes
HeadersLike = Mapping[str, str] | Iterable[tuple[HeaderValue, HeaderValue]]


def verify_webhook(
    secret: str | Sequence[str],
    headers: HeadersLike,
    body: bytes | str,
    *,
    tolerance: timedelta | float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Check that a request comes from Herald and return its parsed body.

    ``secret`` is the webhook's ``whsec_...`` secret (or several, e.g. while you rotate
    it). ``headers`` are the request's headers, any case: a mapping, or ``(name, value)``
    pairs (ASGI's raw bytes pairs too). ``body`` is the raw body, exactly as received;
    verify before parsing it yourself.

    Returns the envelope ``{"delivered_for": {...}, "event": {...}}``, from a JSON body or
    from a form-encoded one (whose two fields are JSON strings). Raises
    :class:`WebhookVerificationError` when a header is missing, no signature matches, or
    ``webhook-timestamp`` is further than ``tolerance`` (seconds or a ``timedelta``; 5
    minutes by default) from now, which stops replays of old requests.
    """
    fields = _lower_headers(headers)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    msg_id, timestamp, signatures = (fields.get(name) for name in _SIGNED_HEADERS)
    if not msg_id or not timestamp or not signatures:
        missing = [name for name in _SIGNED_HEADERS if not fields.get(name)]
        raise WebhookVerificationError(f"missing header: {', '.join(missing)}")
    _check_timestamp(timestamp, tolerance)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("verify_webhook needs at least one secret")
    signed = f"{msg_id}.{timestamp}.".encode() + raw
    expected = [_signature(_key(s), signed) for s in secrets]
    if not _any_matches(expected, signatures.split()):
        raise WebhookVerificationError("no matching signature (wrong secret, or the body was changed)")
    return _parse_body(raw, fields.get("content-type", ""))


_SIGNED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _lower_headers(headers: HeadersLike) -> dict[str, str]:
    items: Iterable[tuple[HeaderValue, HeaderValue]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in items:
        key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        # A header given twice (pairs) is one header with both values, as HTTP says.
        found[key] = f"{found[key]} {text}" if key == "webhook-signature" and key in found else text
    return found


def _check_timestamp(value: str, tolerance: timedelta | float) -> None:
    try:
        sent_s = int(value)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp is not a Unix time: {value[:40]!r}") from None
    tolerance_s = tolerance.total_seconds() if isinstance(tolerance, timedelta) else float(tolerance)
    age_s = time.time() - sent_s
    if age_s > tolerance_s:
        raise WebhookVerificationError(f"webhook-timestamp is too old ({int(age_s)} s ago)")
    if -age_s > tolerance_s:
        raise WebhookVerificationError(f"webhook-timestamp is in the future ({int(-age_s)} s ahead)")


def _key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None


def _signature(key: bytes, signed: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def _any_matches(expected: list[bytes], given: list[str]) -> bool:
    matched = False
    for token in given:
        version, _, value = token.partition(",")
        if version != "v1":
            continue
        candidate = value.encode("latin-1", errors="replace")
        for signature in expected:
            # Constant time, and every pair is compared: timing says nothing about which matched.
            matched |= hmac.compare_digest(signature, candidate)
    return matched


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    media_type = content_type.split(";")[0].strip().lower()
    # Without a content-type, a body that is no JSON object is taken for a form.
    is_form = media_type == FORM_CONTENT_TYPE or (not media_type and not raw.lstrip().startswith(b"{"))
    try:
        if is_form:
            return _parse_form(raw)
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookVerificationError(f"the signed body cannot be parsed: {exc}") from None
    if not isinstance(parsed, dict):
        raise WebhookVerificationError("the signed body is not a JSON object")
    return parsed


def _parse_form(raw: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    for name in FORM_JSON_FIELDS:
        if name in fields:
            fields[name] = json.loads(fields[name])
    return fields
