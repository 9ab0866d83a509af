"""Standard Webhooks signing, checked with the official ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.common.secrets import decode_secret, generate_secret
from service.delivery.signing import (
    build_headers,
    sign,
    signature_header,
    user_agent,
)

BODY = b'{"delivered_for": {"uuid": "x", "name": "n", "type": "webhook"}, "event": {"type": "ping"}}'


def _secret_of(n_bytes: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(n_bytes))).decode()


def _headers(secrets: list[str], body: bytes = BODY) -> dict[str, str]:
    return build_headers(
        secrets=secrets,
        event_uuid=str(uuid.uuid4()),
        event_type="ping",
        delivery_uuid=str(uuid.uuid4()),
        attempt=1,
        timestamp=int(time.time()),
        body=body,
        content_type="application/json",
    )


def test_generated_secret_is_whsec_with_32_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert generate_secret() != secret


def test_signature_verifies_with_the_official_library() -> None:
    secret = generate_secret()
    headers = _headers([secret])
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_both_secrets_verify_during_rotation() -> None:
    current, previous = generate_secret(), generate_secret()
    headers = _headers([current, previous])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(current).verify(BODY, headers, json_parse=False)
    Webhook(previous).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers, json_parse=False)


def test_tampered_body_fails_verification() -> None:
    secret = generate_secret()
    headers = _headers([secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"ping", b"pong"), headers, json_parse=False)


def test_sign_matches_the_specification_example() -> None:
    # The example from the Standard Webhooks specification.
    key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_are_exactly_the_documented_set() -> None:
    headers = _headers([generate_secret()])
    assert set(headers) == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "herald-event-type",
        "herald-delivery-id",
        "herald-attempt",
        "user-agent",
        "content-type",
    }
    assert headers["webhook-timestamp"].isdigit()
    assert headers["user-agent"].startswith("Herald/")
    assert user_agent() == headers["user-agent"]


def test_signature_header_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], "id", 1, b"")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("wsec_" + base64.b64encode(bytes(32)).decode(), "must start with"),
        ("whsec_not*base64!", "standard base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "standard base64"),
        ("whsec_" + base64.b64encode(bytes(32)).decode().rstrip("="), "standard base64"),
        (_secret_of(23), "between 24 and 64 bytes, got 23"),
        (_secret_of(65), "between 24 and 64 bytes, got 65"),
        ("whsec_", "between 24 and 64 bytes, got 0"),
    ],
)
def test_malformed_secrets_are_refused_without_echoing_them(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        decode_secret(secret)
    payload = secret.removeprefix("whsec_")
    if payload:
        assert payload not in str(info.value)


@pytest.mark.parametrize("n_bytes", [24, 32, 64])
def test_secret_sizes_within_bounds_are_accepted(n_bytes: int) -> None:
    assert len(decode_secret(_secret_of(n_bytes))) == n_bytes
