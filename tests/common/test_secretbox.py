"""The secrets-at-rest codec and its keys: tokens bound to their context, rotation, the key file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from service import keyring
from service.common.secretbox import TOKEN_PREFIX, SecretBox, UndecryptableSecret, key_id

OLD, NEW = keyring.new_key(), keyring.new_key()
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def box(*keys: str) -> SecretBox:
    return SecretBox(keyring.parse_keys(",".join(keys)))


def test_a_new_key_is_32_bytes_in_url_safe_base64() -> None:
    key = keyring.new_key()
    assert len(key) == 44
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert keyring.new_key() != key


def test_a_token_opens_in_its_context_only_and_never_shows_the_value() -> None:
    sealed = box(NEW)
    token = sealed.encrypt(SECRET, "subscribers.secret:1")
    assert token.startswith(f"{TOKEN_PREFIX}{key_id(keyring.decode_key(NEW))}.")
    assert SECRET not in token
    assert SECRET.removeprefix("whsec_") not in token
    assert sealed.encrypt(SECRET, "subscribers.secret:1") != token  # a random nonce per value
    assert sealed.decrypt(token, "subscribers.secret:1") == SECRET
    for elsewhere in ("subscribers.secret:2", "subscribers.previous_secret:1"):
        with pytest.raises(UndecryptableSecret) as caught:
            sealed.decrypt(token, elsewhere)
        assert SECRET not in str(caught.value)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(UndecryptableSecret):
        sealed.decrypt(tampered, "subscribers.secret:1")


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old_token = box(OLD).encrypt(SECRET, "c")
    both = box(NEW, OLD)
    assert both.decrypt(old_token, "c") == SECRET
    new_token = both.reencrypt(old_token, "c")
    assert new_token.startswith(both.current_prefix)
    assert both.reencrypt(new_token, "c") == new_token
    assert box(NEW).decrypt(new_token, "c") == SECRET
    with pytest.raises(UndecryptableSecret, match="not configured"):
        box(NEW).decrypt(old_token, "c")


def test_reveal_caches_and_passes_plaintext_written_before_encryption() -> None:
    sealed = SecretBox(keyring.parse_keys(NEW), cache_size=2)
    tokens = [sealed.encrypt(f"{SECRET}{i}", "c") for i in range(3)]
    assert [sealed.reveal(token, "c") for token in tokens] == [f"{SECRET}{i}" for i in range(3)]
    assert len(sealed._cache) == 2  # bounded: the least recently used went
    assert sealed.reveal(SECRET, "c") == SECRET
    with pytest.raises(UndecryptableSecret):
        sealed.reveal(tokens[0], "other")


@pytest.mark.parametrize(
    "value",
    ["short", NEW[:-1] + "!", base64.urlsafe_b64encode(bytes(31)).decode()],
    ids=["short", "not-base64", "31-bytes"],  # NEW is random: ids stable across processes
)
def test_a_malformed_key_is_refused_naming_the_variable_not_the_key(value: str) -> None:
    with pytest.raises(ValueError, match="HERALD_SECRETS_KEYS key #2") as caught:
        keyring.parse_keys(f"{NEW},{value}")
    assert value not in str(caught.value)
    assert NEW not in str(caught.value)


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    [key] = keyring.load_keys("", data_dir)
    path = data_dir / keyring.KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(data_dir.iterdir()) == [path]  # no draft left behind
    text = path.read_text().strip()
    assert len(text) == 44
    assert base64.urlsafe_b64decode(text) == key
    assert keyring.load_keys("", data_dir) == (key,)
    # HERALD_SECRETS_KEYS wins over the file.
    assert keyring.load_keys(NEW, data_dir) == (keyring.decode_key(NEW),)
