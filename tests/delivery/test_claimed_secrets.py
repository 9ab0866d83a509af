"""The claim's secrets: decrypted in Python, once per stored value, for the rows' targets."""

from __future__ import annotations

from typing import Any
from unittest import mock
from uuid import UUID, uuid4

from service import keyring, outbox
from service.common.secretbox import SecretBox
from service.common.secrets import generate_secret
from service.delivery.claims import webhook_deliveries
from service.models.subscribers import secret_context


def _row(box: SecretBox, subscriber: UUID, secret: str, previous: str | None, valid: bool) -> Any:
    """A claimed row as the claim returns it (a mapping, like ``asyncpg.Record``)."""
    sealed_previous = (
        None if previous is None else box.encrypt(previous, secret_context(subscriber, "previous_secret"))
    )
    return {
        "uuid": uuid4(),
        "event_uuid": uuid4(),
        "event_type": "project:created",
        "subscriber_uuid": subscriber,
        "payload": "{}",
        "attempts_count": 0,
        "name": "hook",
        "url": "http://127.0.0.1:9/hook",
        "secret": box.encrypt(secret, secret_context(subscriber, "secret")),
        "previous_secret": sealed_previous,
        "previous_valid": valid,
        "verify_ssl": True,
        "content_type": "application/json",
        "format": "standard",
        "ordered": False,
        "probe": False,
        "seq": 1,
        "headers": None,
        "url_from_portal": False,
    }


def test_targets_carry_the_decrypted_secrets_and_decryption_is_cached() -> None:
    box = SecretBox(keyring.parse_keys(keyring.new_key()))
    subscriber, secret, previous = uuid4(), generate_secret(), generate_secret()
    row = _row(box, subscriber, secret, previous, valid=True)
    expired = _row(box, uuid4(), secret, previous, valid=False)
    claim = outbox.Claim(lease_token=uuid4(), rows=[row, row, expired])
    with mock.patch.object(box, "decrypt", wraps=box.decrypt) as decrypt:
        first = webhook_deliveries(claim, box)
        again = webhook_deliveries(claim, box)
    assert [d.target.secrets for d in first if d.target] == [(secret, previous)] * 2 + [(secret,)]
    assert [d.target for d in again] == [d.target for d in first]
    assert decrypt.call_count == 3  # current and previous of the first row, current of the other


def test_a_secret_no_key_opens_fails_the_attempt_instead_of_the_claim() -> None:
    box = SecretBox(keyring.parse_keys(keyring.new_key()))
    other = SecretBox(keyring.parse_keys(keyring.new_key()))
    row = _row(other, uuid4(), generate_secret(), None, valid=False)
    [delivery] = webhook_deliveries(outbox.Claim(lease_token=uuid4(), rows=[row]), box)
    assert delivery.target is not None
    assert delivery.target.secrets == ("",)  # signing refuses it: nothing is sent
