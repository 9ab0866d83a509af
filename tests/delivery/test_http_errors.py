"""Short failure reasons from the HTTP stack's exceptions: never the URL, the most precise cause first."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from service.common.destinations import DestinationRefused
from service.delivery.http_errors import describe_error


def _connection_key() -> ConnectionKey:
    return ConnectionKey("receiver.test", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout("read"), "timeout after 15s"),
        (httpx.ConnectTimeout("connect"), "connect timeout after 15s"),
        (TimeoutError(), "timeout after 15s"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "request failed (ConnectError)"),
        (
            httpx.RemoteProtocolError("boom http://x/secret?token=1"),
            "connection closed without a complete response",
        ),
        (httpx.UnsupportedProtocol("ftp://x/secret"), "unsupported URL scheme"),
        (ValueError("http://x/secret?token=1"), "request failed (ValueError)"),
    ],
)
def test_describe_error_maps_httpx_errors_to_short_reasons(exc: BaseException, reason: str) -> None:
    assert describe_error(exc, 15.0) == reason


def _wrapped(cause: BaseException, outer: BaseException) -> BaseException:
    # How the httpx-aiohttp transport re-raises: an httpx exception caused by aiohttp's.
    outer.__cause__ = cause
    return outer


def test_describe_error_prefers_the_aiohttp_cause() -> None:
    refused = aiohttp.ClientConnectorError(
        _connection_key(), ConnectionRefusedError(111, "Connection refused")
    )
    # The transport maps a refused connection to ConnectTimeout; the reason must not say timeout.
    assert describe_error(_wrapped(refused, httpx.ConnectTimeout("x")), 2.0) == "connection refused"
    dns = aiohttp.ClientConnectorDNSError(_connection_key(), OSError(-2, "Name or service not known"))
    assert (
        describe_error(_wrapped(dns, httpx.ConnectTimeout("x")), 2.0)
        == "could not resolve host receiver.test"
    )
    read = aiohttp.SocketTimeoutError("Timeout on reading data from socket")
    assert describe_error(_wrapped(read, httpx.ReadTimeout("x")), 2.5) == "timeout after 2.5s"
    disconnected = aiohttp.ServerDisconnectedError()
    assert (
        describe_error(_wrapped(disconnected, httpx.ConnectTimeout("x")), 2.0)
        == "connection closed without a complete response"
    )


def test_describe_error_reports_the_private_destination_refusal() -> None:
    message = "destination receiver.test resolves to a private address (10.0.0.5), refused"
    dns = aiohttp.ClientConnectorDNSError(_connection_key(), DestinationRefused(message))
    assert describe_error(_wrapped(dns, httpx.ConnectTimeout("x")), 2.0) == message
    assert describe_error(_wrapped(DestinationRefused(message), httpx.ConnectError("x")), 2.0) == message
