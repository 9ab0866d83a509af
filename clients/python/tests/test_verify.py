"""``verify_webhook`` on requests signed here (the end-to-end tests use Herald's own)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from herald_client import HeraldError, WebhookVerificationError, verify_webhook

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
EVENT = {"uuid": "0e8f6a4b-6c3d-4f0a-9b7e-1c2d3e4f5a6b", "type": "project:created", "project": {"name": "d"}}
ENVELOPE = {"delivered_for": {"uuid": "5b0f3a9e", "name": "ops", "type": "webhook"}, "event": EVENT}
BODY = json.dumps(ENVELOPE).encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    body: bytes = BODY, *, secrets: tuple[str, ...] = (SECRET,), age_s: int = 0, msg_id: str = "msg_1"
) -> dict[str, str]:
    timestamp = int(time.time()) - age_s
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }


def test_a_signed_json_body_verifies_and_is_parsed() -> None:
    assert verify_webhook(SECRET, signed_headers(), BODY) == ENVELOPE


def test_a_form_encoded_body_gives_the_same_envelope() -> None:
    form = urlencode({k: json.dumps(v) for k, v in ENVELOPE.items()}).encode()
    headers = signed_headers(form) | {"content-type": "application/x-www-form-urlencoded"}
    assert verify_webhook(SECRET, headers, form) == ENVELOPE
    # Without a content-type too.
    del headers["content-type"]
    assert verify_webhook(SECRET, headers, form) == ENVELOPE


def test_headers_in_any_case_as_pairs_or_raw_bytes_pairs() -> None:
    headers = signed_headers()
    upper = {name.upper(): value for name, value in headers.items()}
    assert verify_webhook(SECRET, upper, BODY) == ENVELOPE
    assert verify_webhook(SECRET, list(headers.items()), BODY) == ENVELOPE
    raw = [(name.title().encode(), value.encode()) for name, value in headers.items()]
    assert verify_webhook(SECRET, raw, BODY) == ENVELOPE


def test_a_str_body_is_verified_as_its_utf8_bytes() -> None:
    body = json.dumps({"event": {"project": {"name": "café"}}}, ensure_ascii=False)
    assert verify_webhook(SECRET, signed_headers(body.encode()), body)["event"]["project"]["name"] == "café"


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"project:created", b"project:deleted")
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify_webhook(SECRET, signed_headers(), tampered)


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(OTHER_SECRET, signed_headers(), BODY)


def test_a_changed_webhook_id_is_refused() -> None:
    headers = signed_headers() | {"webhook-id": "msg_2"}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, BODY)


def test_an_old_timestamp_is_refused_even_when_the_signature_is_right() -> None:
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(SECRET, signed_headers(age_s=301), BODY)


def test_a_future_timestamp_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="future"):
        verify_webhook(SECRET, signed_headers(age_s=-400), BODY)


def test_the_tolerance_is_configurable() -> None:
    old = signed_headers(age_s=600)
    assert verify_webhook(SECRET, old, BODY, tolerance=timedelta(minutes=15)) == ENVELOPE
    assert verify_webhook(SECRET, old, BODY, tolerance=900) == ENVELOPE
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, signed_headers(age_s=20), BODY, tolerance=10)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused_and_named(missing: str) -> None:
    headers = signed_headers()
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=missing):
        verify_webhook(SECRET, headers, BODY)


def test_a_timestamp_that_is_no_number_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="Unix time"):
        verify_webhook(SECRET, signed_headers() | {"webhook-timestamp": "yesterday"}, BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    headers = signed_headers(secrets=(OTHER_SECRET, SECRET))
    assert verify_webhook(SECRET, headers, BODY) == ENVELOPE
    assert verify_webhook(OTHER_SECRET, headers, BODY) == ENVELOPE
    # And a receiver holding both secrets accepts a request signed with one of them.
    assert verify_webhook([OTHER_SECRET, SECRET], signed_headers(), BODY) == ENVELOPE


def test_signatures_of_other_versions_are_ignored() -> None:
    headers = signed_headers()
    good = headers["webhook-signature"]
    headers["webhook-signature"] = "v1a," + good.removeprefix("v1,")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, BODY)
    headers["webhook-signature"] = f"v2,abc {good}"
    assert verify_webhook(SECRET, headers, BODY) == ENVELOPE


def test_a_secret_without_prefix_is_accepted_and_a_malformed_one_is_a_value_error() -> None:
    assert verify_webhook(SECRET.removeprefix("whsec_"), signed_headers(), BODY) == ENVELOPE
    with pytest.raises(ValueError, match="base64"):
        verify_webhook("whsec_not base64!", signed_headers(), BODY)


def test_verification_errors_belong_to_the_client_hierarchy() -> None:
    with pytest.raises(HeraldError) as caught:
        verify_webhook(SECRET, {}, BODY)
    assert isinstance(caught.value, WebhookVerificationError)
    assert caught.value.status_code is None
