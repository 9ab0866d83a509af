"""A webhook's extra request headers (``headers`` on create and PATCH; docs/webhooks.md, "Custom
headers"): the rules a set must follow, checked per name so that a 422 names the header
(``["body", "headers", "Host"]``).

Values are secrets (an API token, basic auth): no message here ever quotes one.
"""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

HEADERS_MAX = 20
HEADER_NAME_MAX_CHARS = 256
HEADER_VALUE_MAX_BYTES = 2048

# RFC 9110 §5.6.2: a field name is a token of tchar.
_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
# Visible US-ASCII, space and tab (RFC 9110 §5.5 without the obsolete obs-text).
_VALUE_CHARS = frozenset(chr(code) for code in range(0x20, 0x7F)) | {"\t"}
# Herald sets these itself (or the HTTP stack does, from the body and the URL).
FORBIDDEN_HEADER_NAMES = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "user-agent",
    }
)
FORBIDDEN_HEADER_PREFIXES = ("webhook-", "herald-")

HEADERS_DESCRIPTION = (
    f"Extra request headers sent with every attempt and test: name → value, at most {HEADERS_MAX}. "
    "Names are HTTP tokens (not `host`, `content-length`, `content-type`, `content-encoding`, "
    "`transfer-encoding`, `connection`, `user-agent`, nor `webhook-*` or `herald-*`); values are "
    f"at most {HEADER_VALUE_MAX_BYTES} bytes of visible ASCII, spaces and tabs. Values are stored "
    "encrypted and never shown: the webhook shows `header_names`."
)


def header_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a custom header name, or ``None`` when it can."""
    if not name or not _TCHAR.issuperset(name):
        return "header name must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
    if len(name) > HEADER_NAME_MAX_CHARS:
        return f"header name must be at most {HEADER_NAME_MAX_CHARS} characters"
    lowered = name.lower()
    if lowered in FORBIDDEN_HEADER_NAMES or lowered.startswith(FORBIDDEN_HEADER_PREFIXES):
        return "header name is reserved: Herald sets it itself (so too every webhook-* and herald-* name)"
    return None


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value, or ``None`` when it can (never quotes it)."""
    if "\r" in value or "\n" in value:
        return "header value must not contain CR or LF"
    if not _VALUE_CHARS.issuperset(value):
        return "header value must be visible ASCII characters, spaces or tabs (no control characters)"
    if len(value) > HEADER_VALUE_MAX_BYTES:
        return f"header value must be at most {HEADER_VALUE_MAX_BYTES} bytes"
    return None


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    errors: list[InitErrorDetails] = []
    seen: set[str] = set()
    for name, value in headers.items():
        problem = header_name_problem(name) or header_value_problem(value)
        if problem is None and name.lower() in seen:
            problem = "header names must differ in more than letter case"
        seen.add(name.lower())
        if problem is not None:
            # "input" is left out of every answer (service.main), but not quoting the value
            # here keeps it out of anything else that prints the error.
            error = PydanticCustomError("value_error", problem)
            errors.append(InitErrorDetails(type=error, loc=(name,), input=name))
    if errors:
        # Raised inside a validator, its errors join the field's location: ["body", "headers", name].
        raise ValidationError.from_exception_data("headers", errors)
    return headers


Headers = Annotated[
    dict[str, str],
    Field(max_length=HEADERS_MAX, description=HEADERS_DESCRIPTION, examples=[{"Authorization": "Bearer …"}]),
    AfterValidator(_check_headers),
]
