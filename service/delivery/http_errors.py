"""Short reasons for the failures of the HTTP stack (httpx over aiohttp), e.g. ``connection refused``.

Reasons are stored as ``last_error`` and answered by the ``test`` routes: exception
messages are never copied as they are, since some quote the full URL (its path or query
may hold a token); at most the host is named.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import aiohttp
import httpx

from service.common.destinations import DestinationRefused
from service.delivery.sending import unexpected_failure


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _seconds(value_s: float) -> str:
    return f"{value_s:g}s"


def _describe_one(exc: BaseException, timeout_s: float) -> str | None:
    """Describe one link of an exception chain, or ``None`` to look further down."""
    # Order matters: aiohttp's classes inherit from each other and from OSError.
    if isinstance(exc, DestinationRefused):
        return exc.strerror or "destination refused"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, DestinationRefused):
            return exc.os_error.strerror or "destination refused"
        return f"could not resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return "TLS certificate verification failed"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS error"
    if isinstance(exc, aiohttp.ConnectionTimeoutError | httpx.ConnectTimeout):
        return f"connect timeout after {_seconds(timeout_s)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"connection failed: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
        return "connection closed without a complete response"
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError | httpx.TimeoutException):
        return f"timeout after {_seconds(timeout_s)}"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "invalid response from receiver"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    if isinstance(exc, httpx.InvalidURL | aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by receiver"
    return None


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """Return a short reason for an exception raised by an attempt, e.g. ``connection refused``.

    The most specific cause wins: the ``httpx-aiohttp`` transport re-raises aiohttp's
    errors as httpx ones (sometimes under a misleading class, e.g. a refused connection
    as ``ConnectTimeout``), keeping the original as ``__cause__``. Exception messages are
    never copied as they are, since some quote the full URL.
    """
    chain = list(_chain(exc))
    # Our own refusal and aiohttp's precise errors sit at the bottom of the chain.
    for link in reversed(chain):
        if isinstance(link, DestinationRefused | aiohttp.ClientError):
            described = _describe_one(link, timeout_s)
            if described is not None:
                return described
    for link in chain:
        if isinstance(link, asyncio.CancelledError):
            return "cancelled"
        described = _describe_one(link, timeout_s)
        if described is not None:
            return described
    return unexpected_failure(exc)
