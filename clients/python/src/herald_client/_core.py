"""The part of a request that does no I/O, shared by :class:`Herald` and :class:`AsyncHerald`.

An API method is described by a :class:`Call` (method, path, body, how to read the
answer). :class:`ClientCore` turns a call into an ``httpx.Request`` and decides what each
answer or transport error means: a result, a :class:`Retry` after some seconds, or an
exception of the :class:`HeraldError` hierarchy. The two clients only add the sending and
the sleeping, with or without ``await``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from herald_client._errors import HeraldError, UnavailableError, describe_detail, error_for_status
from herald_client._retry import NO_ANSWER_ERRORS, NOT_SENT_ERRORS, RetryPolicy
from herald_client._version import __version__

T = TypeVar("T")

USER_AGENT = f"herald-client/{__version__} python-httpx/{httpx.__version__}"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its successful answer.

    ``idempotent`` says whether sending it twice is harmless (reads, and event ingest, whose
    ``uuid`` is fixed before the first try): only then is it retried when it may have reached
    Herald without an answer coming back.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    idempotent: bool = True


@dataclass(frozen=True)
class Retry:
    """Send the call again after ``delay_s`` seconds."""

    delay_s: float


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def encode_json(value: Any) -> bytes:
    """The request body; ``UUID`` and ``datetime`` values are written as strings."""
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":")).encode()


class ClientCore:
    """Configuration and decisions common to both clients."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float, policy: RetryPolicy) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = str(url).rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout)
        self.policy = policy
        self.headers = {"accept": "application/json", "user-agent": USER_AGENT}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"

    def describe(self, cls: type) -> str:
        key = ", api_key='***'" if self.api_key else ""
        return f"{cls.__name__}({self.base_url!r}{key})"

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers = dict(self.headers)
        if call.body is not None:
            headers["content-type"] = "application/json"
        return http.build_request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            content=call.body,
            headers=headers,
            timeout=self.timeout,
        )

    def on_response(self, call: Call[T], retry: int, response: httpx.Response) -> T | Retry:
        """The result of a 2xx answer, a :class:`Retry`, or raise the error it stands for."""
        if response.is_success:
            try:
                return call.parse(response)
            except (ValueError, KeyError, TypeError) as exc:
                raise HeraldError(
                    f"{call.method} {call.path}: unexpected answer from Herald ({exc!r})",
                    status_code=response.status_code,
                    request_id=response.headers.get("x-request-id"),
                ) from exc
        delay_s = self.policy.after_response(retry, response, idempotent=call.idempotent)
        if delay_s is not None:
            return Retry(delay_s)
        raise error_from_response(call, response)

    def on_error(self, call: Call[Any], retry: int, error: httpx.TransportError) -> Retry:
        """A :class:`Retry` after a transport error, or raise the :class:`HeraldError` for it."""
        delay_s = self.policy.after_error(retry, error, idempotent=call.idempotent)
        if delay_s is not None:
            return Retry(delay_s)
        where = f"{call.method} {self.base_url}{call.path}"
        if isinstance(error, NOT_SENT_ERRORS + NO_ANSWER_ERRORS):
            tries = "1 attempt" if retry == 0 else f"{retry + 1} attempts"
            raise UnavailableError(f"{where}: no answer from Herald after {tries} ({error!r})") from error
        raise HeraldError(f"{where}: request failed ({error!r})") from error


def error_from_response(call: Call[Any], response: httpx.Response) -> HeraldError:
    """The exception for an error answer, carrying Herald's ``detail``."""
    try:
        body = response.json()
        detail = body["detail"] if isinstance(body, dict) and "detail" in body else body
    except ValueError:
        detail = response.text[:500] or None
    status = response.status_code
    reason = response.reason_phrase or "error"
    summary = describe_detail(detail)
    message = f"{call.method} {call.path}: {status} {reason}" + (f": {summary}" if summary else "")
    cls = error_for_status(status)
    return cls(message, status_code=status, detail=detail, request_id=response.headers.get("x-request-id"))


def next_cursor(previous: str | None, cursor: str | None) -> str | None:
    """The cursor of the next page, ``None`` after the last; guards against a server that
    would send the same page forever."""
    if cursor is not None and cursor == previous:
        raise HeraldError(f"Herald answered the same cursor twice ({cursor!r}); stopping")
    return cursor
