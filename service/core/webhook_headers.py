"""A webhook's custom request headers at rest: sealed as one SecretBox token, opened where sent.

The whole set (the JSON object name → value) is one token bound to its row and column
(``secret_context(uuid, "headers")``); ``header_names`` keeps the names in plain text for display.
Opened sets are cached per box and (webhook, stored token), up to the box's cache size: one
AES-GCM decryption and one JSON parse per webhook and version of its set in a process, and a
claim of a warm webhook costs one dictionary look-up (docs/webhooks.md, "Custom headers").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from uuid import UUID
from weakref import WeakKeyDictionary

import orjson

from service.common.secretbox import CACHE_SIZE, SecretBox, UndecryptableSecret, is_token
from service.errors import Conflict
from service.models.subscribers import Subscriber, secret_context

logger = logging.getLogger(__name__)

HeaderPairs = tuple[tuple[str, str], ...]
"""Custom headers as sent: (name, value) pairs in the order they were given."""

HEADERS_COLUMN = "headers"


def seal_headers(
    box: SecretBox, subscriber_uuid: UUID, headers: Mapping[str, str]
) -> tuple[str | None, list[str]]:
    """The stored form of ``headers``: its token (``None`` for an empty set) and its sorted names."""
    if not headers:
        return None, []
    plaintext = orjson.dumps(dict(headers)).decode("utf-8")
    return box.encrypt(plaintext, secret_context(subscriber_uuid, HEADERS_COLUMN)), sorted(headers)


# Per box (the process's keys), the sets it opened, by (webhook, stored token): a warm look-up
# is one dictionary probe, with no context string to build and no JSON to parse. A token only
# gets here once this box's keys opened it.
_opened: WeakKeyDictionary[SecretBox, dict[tuple[UUID, str], HeaderPairs]] = WeakKeyDictionary()


def open_headers(box: SecretBox, subscriber_uuid: UUID, stored: str | None) -> HeaderPairs:
    """The headers a webhook's ``headers`` column holds; ``UndecryptableSecret`` if no key opens it."""
    if stored is None:
        return ()
    opened = _opened.get(box)
    if opened is None:
        opened = _opened.setdefault(box, {})
    key = (subscriber_uuid, stored)
    pairs = opened.get(key)
    if pairs is None:
        context = secret_context(subscriber_uuid, HEADERS_COLUMN)
        plaintext = box.decrypt(stored, context) if is_token(stored) else stored
        loaded: dict[str, str] = orjson.loads(plaintext)
        pairs = tuple(loaded.items())
        if len(opened) >= CACHE_SIZE:
            del opened[next(iter(opened))]  # the oldest entry
        opened[key] = pairs
    return pairs


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
