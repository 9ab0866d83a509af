"""A webhook's custom request headers at rest: sealed as one SecretBox token, opened where sent.

The whole set (the JSON object name → value) is one token bound to its row and column
(``secret_context(uuid, "headers")``); ``header_names`` keeps the names in plain text for display.
Opening goes through the box's cache (one AES-GCM decryption per webhook and stored token in a
process) and the parsed set is cached by its plaintext, so a claim of a warm webhook costs two
dictionary look-ups (docs/webhooks.md, "Custom headers").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from uuid import UUID

import orjson

from service.common.secretbox import SecretBox, UndecryptableSecret
from service.errors import Conflict
from service.models.subscribers import Subscriber, secret_context

logger = logging.getLogger(__name__)

HeaderPairs = tuple[tuple[str, str], ...]
"""Custom headers as sent: (name, value) pairs in the order they were given."""

HEADERS_COLUMN = "headers"
_PARSED_CACHE_SIZE = 10_000


def seal_headers(
    box: SecretBox, subscriber_uuid: UUID, headers: Mapping[str, str]
) -> tuple[str | None, list[str]]:
    """The stored form of ``headers``: its token (``None`` for an empty set) and its sorted names."""
    if not headers:
        return None, []
    plaintext = orjson.dumps(dict(headers)).decode("utf-8")
    return box.encrypt(plaintext, secret_context(subscriber_uuid, HEADERS_COLUMN)), sorted(headers)


@lru_cache(maxsize=_PARSED_CACHE_SIZE)
def _parsed(plaintext: str) -> HeaderPairs:
    # Keyed by the plaintext the box's cache hands back (the same string object each time, its
    # hash computed once), so a warm look-up neither hashes nor parses the set again.
    loaded: dict[str, str] = orjson.loads(plaintext)
    return tuple(loaded.items())


def open_headers(box: SecretBox, subscriber_uuid: UUID, stored: str | None) -> HeaderPairs:
    """The headers a webhook's ``headers`` column holds; ``UndecryptableSecret`` if no key opens it."""
    if stored is None:
        return ()
    return _parsed(box.reveal(stored, secret_context(subscriber_uuid, HEADERS_COLUMN)))


def webhook_headers(box: SecretBox, subscriber: Subscriber) -> HeaderPairs:
    """A stored webhook's headers, to send them now; ``Conflict`` (409) when no key opens them."""
    try:
        return open_headers(box, subscriber.uuid, subscriber.headers)
    except UndecryptableSecret:
        logger.error("stored headers cannot be decrypted", extra={"subscriber": str(subscriber.uuid)})
        raise Conflict(
            "this webhook's headers were encrypted with a key this process does not hold "
            "(HERALD_SECRETS_KEYS must be the same on every replica)"
        ) from None
