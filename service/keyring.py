"""The keys that encrypt secrets at rest: ``HERALD_SECRETS_KEYS`` or ``HERALD_DATA_DIR/secrets.key``.

A key is 32 random bytes in URL-safe base64 (44 characters). The first key of the list
encrypts, every key decrypts (docs/operations.md, "Secrets at rest"). Messages name the
variable or the file, never a key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

KEY_BYTES = 32
KEY_CHARS = 44
KEYS_VARIABLE = "HERALD_SECRETS_KEYS"
KEY_FILE_NAME = "secrets.key"


def new_key() -> str:
    """A fresh key: 32 random bytes in URL-safe base64 (44 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(text: str) -> bytes:
    """The 32 bytes of one key; ``ValueError`` (without the key) if it is malformed."""
    text = text.strip()
    try:
        key = base64.b64decode(text, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not URL-safe base64") from None
    if len(text) != KEY_CHARS or len(key) != KEY_BYTES:
        raise ValueError(f"expected {KEY_BYTES} bytes in URL-safe base64 ({KEY_CHARS} characters)")
    return key


def parse_keys(text: str, source: str = KEYS_VARIABLE) -> tuple[bytes, ...]:
    """Parse a comma list of keys; a malformed one raises ``ValueError`` naming ``source``."""
    keys: list[bytes] = []
    for number, entry in enumerate((part for part in text.split(",") if part.strip()), start=1):
        try:
            keys.append(decode_key(entry))
        except ValueError as exc:
            raise ValueError(f"{source} key #{number} is malformed: {exc}") from None
    return tuple(keys)


def key_file_keys(data_dir: Path) -> tuple[bytes, ...]:
    """The key of ``data_dir/secrets.key``, created (mode 0600) with a fresh key if missing."""
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under a private name, then linked into place: a process starting at the
        # same moment never reads a half-written file, and the first link wins.
        draft = data_dir / f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(new_key() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    keys = parse_keys(path.read_text(encoding="ascii"), source=str(path))
    if len(keys) != 1:
        raise ValueError(f"{path} must hold exactly one key")
    return keys


def load_keys(configured: str, data_dir: Path) -> tuple[bytes, ...]:
    """``HERALD_SECRETS_KEYS`` when set, else the data directory's key file."""
    keys = parse_keys(configured)
    return keys or key_file_keys(data_dir)
