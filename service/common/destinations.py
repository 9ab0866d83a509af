"""The private-destination policy: which addresses a webhook must not reach, and the URL checks.

Webhooks must not reach into Herald's own network. Two checks, both skipped when the setting
that governs the webhook allows private destinations: ``HERALD_ALLOW_PRIVATE_DESTINATIONS`` for
webhooks whose URL an admin set (an admin key, the console),
``HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS`` for those whose URL was set in a project's portal
and for the portal's test sends (a tenant must not probe Herald's network):

- at create/PATCH, :func:`check_url` refuses a literal private address or a name that
  resolves (within 2 s) to one; a name that does not resolve yet is accepted;
- at every delivery, the delivery layer's guard drops the forbidden addresses of the name
  about to be connected to (so a name re-pointed at a private address after creation, DNS
  rebinding, is refused: :func:`resolved_refusal`), and refuses literal addresses with
  :func:`literal_refusal` (the HTTP stack connects to those without resolving).

Pure policy: no HTTP stack is imported here, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from functools import lru_cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve ``(host, port)`` to IP address strings; raise ``OSError`` when it does not resolve."""

RESOLVE_TIMEOUT_S = 2.0
ALLOW_PRIVATE_SETTING = "HERALD_ALLOW_PRIVATE_DESTINATIONS"
PORTAL_ALLOW_PRIVATE_SETTING = "HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS"


def get_resolver() -> Resolver | None:
    """The name resolver of the private-destination check (``None``: the system's): a FastAPI
    dependency of the API and the console alike, so that tests stub both at once."""
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_EXTRA_FORBIDDEN = (
    ipaddress.IPv4Network("100.64.0.0/10"),  # carrier-grade NAT: not global, not "private" in 3.11
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
)


def refused_at_creation(reason: str, setting: str = ALLOW_PRIVATE_SETTING) -> str:
    """The message of a URL refused at create/PATCH: ``reason``, and the setting that allows it."""
    return f"{reason}; set {setting}=true to allow private destinations"


class ForbiddenDestination(Exception):
    """A webhook URL points at a private address (refused at create/PATCH: a 422)."""

    def __init__(self, message: str, *, host: str) -> None:
        super().__init__(message)
        self.message = message
        self.host = host


class DestinationRefused(OSError):
    """A delivery was refused because it would connect to a private address.

    An ``OSError`` so that the HTTP stack's connector reports it like any other failure to
    connect; the delivery layer's error description turns it back into its message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 form carries (mapped, 6to4, NAT64).

    Teredo (2001::/32) is left alone: it is non-global as a whole, so it stays refused.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str | None:
    """Return why ``ip`` is forbidden (``"loopback"``, ``"private"``, ...), or ``None`` if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_kind(embedded)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private or any(ip in net for net in _EXTRA_FORBIDDEN)),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    )
    return next((kind for kind, matches in checks if matches), None)


def is_forbidden_address(ip: IPAddress) -> bool:
    """Tell whether a webhook must not connect to ``ip`` unless private destinations are allowed."""
    return address_kind(ip) is not None


def is_localhost_name(host: str) -> bool:
    """Tell whether ``host`` is ``localhost`` or a name under it (always loopback, RFC 6761)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def literal_address(host: str) -> IPAddress | None:
    """Return ``host`` as an IP address when it is one, else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ForbiddenDestination("webhook URL is not a valid URL", host="") from None
    if not host:
        raise ForbiddenDestination("webhook URL has no host", host="")
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)


def literal_refusal(host: str) -> str | None:
    """Return the reason a literal host (address or ``localhost``) is refused, else ``None``."""
    if is_localhost_name(host):
        return f"destination {host} is a loopback address, refused"
    address = literal_address(host)
    if address is None:
        return None
    kind = address_kind(address)
    return None if kind is None else f"destination {host} is a {kind} address, refused"


def resolved_refusal(host: str, refused: list[str]) -> str:
    """The reason a delivery to ``host`` is refused when it resolved to the ``refused`` addresses only."""
    kind = address_kind(ipaddress.ip_address(refused[0])) or "private"
    shown = ", ".join(refused[:3])
    return f"destination {host} resolves to a {kind} address ({shown}), refused"


async def system_resolve(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``) to address strings."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3]:
            address = f"{address.split('%', 1)[0]}%{sockaddr[3]}"  # keep link-local scope
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    timeout_s: float = RESOLVE_TIMEOUT_S,
    setting: str = ALLOW_PRIVATE_SETTING,
) -> None:
    """Refuse (``ForbiddenDestination``) a webhook URL whose host is or resolves to a private address.

    Used when a webhook is created or its URL changed. A name that does not resolve
    within ``timeout_s`` is accepted: the delivery-time guard checks it again. ``setting`` is
    the one that governs this URL (``allow_private`` is its value), named in the refusal.
    """
    if allow_private:
        return
    host, port = _host_and_port(url)
    refusal = literal_refusal(host)
    if refusal is not None:
        raise ForbiddenDestination(refused_at_creation(refusal, setting), host=host)
    if literal_address(host) is not None:
        return
    resolve = resolver or system_resolve
    try:
        async with asyncio.timeout(timeout_s):
            addresses = await resolve(host, port)
    except (OSError, TimeoutError):
        return
    for text in addresses:
        address = literal_address(text)
        kind = address_kind(address) if address is not None else None
        if kind is not None:
            reason = f"destination {host} resolves to a {kind} address ({text}), refused"
            raise ForbiddenDestination(refused_at_creation(reason, setting), host=host)


@lru_cache(maxsize=4096)
def _literal_url_refusal(url: str) -> str | None:
    try:
        host, _port = _host_and_port(url)
    except ForbiddenDestination as exc:
        return exc.message
    return literal_refusal(host)


def check_literal_host(url: str, allow_private: bool) -> None:
    """Refuse (``DestinationRefused``) a delivery to a literal private address or ``localhost``.

    The HTTP stack connects to literal addresses without resolving them, so the
    resolver-side guard never sees them; this covers them. Runs on every delivery, hence
    the answer is kept per URL (subscribers are few).
    """
    if allow_private:
        return
    refusal = _literal_url_refusal(url)
    if refusal is not None:
        raise DestinationRefused(refusal)
