"""The exceptions the client raises: one hierarchy, rooted at :class:`HeraldError`.

::

    HeraldError
    ├── AuthError                 401, 403
    ├── NotFoundError             404
    ├── ConflictError             409
    ├── ValidationError           422 (``.detail`` is the list of errors)
    ├── UnavailableError          502, 503, 504, or no answer at all (``status_code`` None)
    └── WebhookVerificationError  a received webhook failed verification
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from herald_client._models import Accepted


class HeraldError(Exception):
    """Something went wrong talking to Herald (or verifying one of its webhooks).

    ``status_code`` is Herald's HTTP status, or ``None`` when no answer came. ``detail`` is
    the ``detail`` of Herald's error body (a string, or for a 422 the list of errors).
    ``request_id`` is the ``x-request-id`` Herald logged the request under, when known.
    ``accepted`` lists the events already recorded when :meth:`send_events` failed on a
    later chunk (each chunk is its own transaction); it is empty otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.request_id = request_id
        self.accepted: Sequence[Accepted] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r})"


class AuthError(HeraldError):
    """401 (no key, or an unknown one) or 403 (the key's scope does not allow this)."""


class NotFoundError(HeraldError):
    """404: no such event, subscriber or delivery."""


class ConflictError(HeraldError):
    """409: e.g. an event ``uuid`` reused with different content, or a delivery in flight."""


class ValidationError(HeraldError):
    """422: Herald refused the request's content. ``detail`` lists ``{"loc", "msg", "type"}``."""

    detail: list[dict[str, Any]]


class UnavailableError(HeraldError):
    """Herald could not be reached or could not serve the request, even after the retries.

    ``status_code`` is 502, 503 or 504 for an answer, ``None`` when none came (connection
    refused, timeout, connection dropped).
    """


class WebhookVerificationError(HeraldError):
    """A received webhook is not authentic: a signature or timestamp header is missing or
    wrong, or its timestamp is outside the tolerance."""


def error_for_status(status_code: int) -> type[HeraldError]:
    """The exception class for an error answer of Herald."""
    if status_code in (401, 403):
        return AuthError
    if status_code in (502, 503, 504):
        return UnavailableError
    return _BY_STATUS.get(status_code, HeraldError)


_BY_STATUS: dict[int, type[HeraldError]] = {
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}


def describe_detail(detail: Any) -> str:
    """A one-line summary of an error ``detail``: the string, or ``loc: msg`` pairs of a 422."""
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        more = len(detail) - 5
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    return "" if detail is None else str(detail)
