"""Outgoing connections through the egress proxy (``HERALD_DELIVERY_PROXY_URL``), on aiohttp.

:class:`EgressConnector` is aiohttp's TCP connector with one change: the TCP connection to a
destination not in ``HERALD_DELIVERY_NO_PROXY`` is opened by the proxy (an HTTP ``CONNECT``
tunnel, over TLS for an ``https://`` proxy, or SOCKS5) instead of by Herald; TLS to the
destination then runs inside it, verified against the destination's name as usual. The
proxy protocols are python-socks' (the maintained implementation under aiohttp-socks, used
here directly because aiohttp-socks would start TLS against the address rather than the name).

The private-destination guard keeps its place: the connector's resolver is still
:class:`~service.delivery.ssrf.GuardedResolver`, so Herald resolves and checks the
destination's name, then asks the proxy for the address it checked (never the name): the
proxy cannot resolve it anew to somewhere else (DNS rebinding). With private destinations
allowed there is nothing to check, and the proxy gets the name to resolve itself (Herald may
have no DNS for outside names where only the proxy reaches out). The proxy's own address is
never checked: it is the operator's choice and may well be private.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from python_socks import ProxyConnectionError as SocksConnectionError
from python_socks import ProxyError as SocksError
from python_socks import ProxyType
from python_socks.async_.asyncio.v2 import Proxy

from service.common.egress import EgressProxy

# python-socks' own default is 60 s; aiohttp passes the attempt's connect timeout.
_FALLBACK_CONNECT_TIMEOUT_S = 15.0
_PROXY_TYPES = {"http": ProxyType.HTTP, "https": ProxyType.HTTP, "socks5": ProxyType.SOCKS5}


class ProxyRefused(OSError):
    """The proxy answered but would not open the tunnel (e.g. an HTTP 403 to ``CONNECT``)."""


class _TunnelProtocol(ResponseHandler):
    """aiohttp's protocol over a proxied stream, keeping the stream's writer alive: without a
    reference the writer's finalizer closes the transport (as aiohttp-socks does, its #27)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        super().__init__(loop)
        self._writer = writer


class EgressConnector(aiohttp.TCPConnector):
    """A TCP connector that reaches destinations through ``egress``'s proxy, except those it bypasses."""

    def __init__(self, egress: EgressProxy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._egress = egress
        self._proxy_ssl = ssl.create_default_context() if egress.scheme == "https" else None

    def proxied(self, host: str) -> bool:
        """Whether a request to ``host`` goes through the proxy."""
        return not self._egress.bypasses(host)

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[aiohttp.connector.AddrInfoType],
        req: aiohttp.ClientRequest,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109  # aiohttp's signature
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        # aiohttp's hook for opening one connection; it tries the next address on failure.
        if not self.proxied(req.url.raw_host or ""):
            return await super()._wrap_create_connection(
                *args, addr_infos=addr_infos, req=req, timeout=timeout, client_error=client_error, **kwargs
            )
        host, port = addr_infos[0][4][0], addr_infos[0][4][1]
        tls: ssl.SSLContext | None = kwargs.get("ssl")
        server_hostname: str | None = kwargs.get("server_hostname")
        proxy = Proxy(
            proxy_type=_PROXY_TYPES[self._egress.scheme],
            host=self._egress.host,
            port=self._egress.port,
            username=self._egress.username,
            password=self._egress.password,
            rdns=True,  # the host is the checked address, or a name the proxy may resolve
            proxy_ssl=self._proxy_ssl,
        )
        try:
            stream = await proxy.connect(
                dest_host=host, dest_port=port, timeout=timeout.sock_connect or _FALLBACK_CONNECT_TIMEOUT_S
            )
            if tls is not None:
                try:
                    stream = await stream.start_tls(hostname=server_hostname or host, ssl_context=tls)
                except BaseException:
                    await stream.close()
                    raise
        except ssl.SSLCertVerificationError as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except SocksConnectionError as exc:
            # python-socks names only the proxy's host and port.
            raise client_error(req.connection_key, exc) from exc
        except SocksError as exc:
            refused = ProxyRefused(exc.error_code or 0, f"the proxy refused the tunnel ({exc})")
            raise client_error(req.connection_key, refused) from exc
        transport = stream.writer.transport
        protocol = _TunnelProtocol(self._loop, stream.writer)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return transport, protocol  # type: ignore[return-value]  # a stream's transport is a Transport
