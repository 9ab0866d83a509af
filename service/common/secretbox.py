"""Authenticated encryption of values at rest (webhook secrets; any other value, e.g. headers).

A token is ``hsb1.<key id>.<URL-safe base64 of nonce + AES-256-GCM ciphertext and tag>``: a
random 96-bit nonce per value; the ``context`` (e.g. ``subscribers.secret:<uuid>``) is the
associated data, so a token only opens where it was written (the same row and column). The key
id (8 hex digits of a hash of the key) tells which key of the list opened it, so a rotation
finds what is not under the first key yet. The first key encrypts; every key decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_PREFIX = "hsb1."  # noqa: S105 - the token format's tag, not a secret
NONCE_BYTES = 12
CACHE_SIZE = 10_000


class UndecryptableSecret(Exception):
    """No key opens a token (wrong keys, or a token moved to another row or column)."""


def key_id(key: bytes) -> str:
    """A key's public name: 8 hex digits of SHA-256 (the key cannot be derived from it)."""
    return hashlib.sha256(b"herald secretbox key id\x00" + key).hexdigest()[:8]


def is_token(value: str) -> bool:
    """Whether ``value`` is a token (rather than a plaintext written before encryption)."""
    return value.startswith(TOKEN_PREFIX)


class SecretBox:
    """Encrypt with the first key, decrypt with any; decryptions are cached (bounded LRU)."""

    def __init__(self, keys: Sequence[bytes], *, cache_size: int = CACHE_SIZE) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self.current_key_id = key_id(keys[0])
        self._current = self._ciphers[self.current_key_id]
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._cache_size = cache_size

    @property
    def current_prefix(self) -> str:
        """How every token written with the first key starts."""
        return f"{TOKEN_PREFIX}{self.current_key_id}."

    def encrypt(self, plaintext: str, context: str) -> str:
        """A new token for ``plaintext``, bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return self.current_prefix + body

    def decrypt(self, token: str, context: str) -> str:
        """The plaintext of ``token`` written for ``context``; ``UndecryptableSecret`` otherwise.

        The message never holds the token or the plaintext.
        """
        prefix, _, rest = token.partition(".")
        kid, _, body = rest.partition(".")
        cipher = self._ciphers.get(kid)
        if prefix + "." != TOKEN_PREFIX or cipher is None:
            raise UndecryptableSecret(f"{context}: written with a key that is not configured")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plaintext = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise UndecryptableSecret(f"{context}: the token does not open with its key") from None
        return plaintext.decode("utf-8")

    def reveal(self, stored: str, context: str) -> str:
        """:meth:`decrypt` through the cache; a plaintext stored before encryption is returned as is."""
        if not is_token(stored):
            return stored
        cache_key = (context, stored)
        cached = self._cache.get(cache_key)
        if cached is not None:
            self._cache.move_to_end(cache_key)
            return cached
        plaintext = self.decrypt(stored, context)
        self._cache[cache_key] = plaintext
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return plaintext

    def reencrypt(self, stored: str, context: str) -> str:
        """``stored`` under the first key (unchanged when it already is)."""
        if stored.startswith(self.current_prefix):
            self.decrypt(stored, context)  # still check it opens
            return stored
        return self.encrypt(self.reveal(stored, context), context)
