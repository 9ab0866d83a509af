"""The egress proxy settings: ``HERALD_DELIVERY_PROXY_URL`` and ``HERALD_DELIVERY_NO_PROXY``, parsed.

Pure parsing and matching, no HTTP stack: the settings validate with it at start (a malformed
value refuses to start, naming the variable) and the delivery layer routes with it. A proxy
URL may hold credentials, so messages and :meth:`EgressProxy.display` name only
``scheme://host:port``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PROXY_URL_SETTING = "HERALD_DELIVERY_PROXY_URL"
NO_PROXY_SETTING = "HERALD_DELIVERY_NO_PROXY"

PROXY_SCHEMES = ("http", "https", "socks5")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080}
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class NoProxy:
    """The destinations reached directly: host names (and the names under them) and IP networks
    (a single address is a /32 or /128). Names match names, networks match literal addresses:
    a name is never resolved to decide."""

    names: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    everything: bool = False

    def matches(self, host: str) -> bool:
        """Whether a request to ``host`` (a URL's host: a name or a literal address) skips the proxy."""
        if self.everything:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = host.rstrip(".").lower()
            return any(name == entry or name.endswith("." + entry) for entry in self.names)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class EgressProxy:
    """Where outgoing requests go: the proxy's scheme, host, port and credentials, and what bypasses it."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    no_proxy: NoProxy = NoProxy()

    def display(self) -> str:
        """``scheme://host:port``, for logs: never the credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def bypasses(self, host: str) -> bool:
        """Whether a request to ``host`` is sent directly rather than through the proxy."""
        return self.no_proxy.matches(host)


def _refuse_proxy_url(reason: str) -> ValueError:
    # Never quote the value: it may hold a password.
    return ValueError(
        f"{PROXY_URL_SETTING} {reason}: expected http://, https:// or socks5://[user:password@]host[:port]"
    )


def parse_proxy_url(text: str, no_proxy: NoProxy | None = None) -> EgressProxy:
    """Parse ``HERALD_DELIVERY_PROXY_URL``; ``ValueError`` naming the variable (never the value)
    when it is malformed."""
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise _refuse_proxy_url("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise _refuse_proxy_url("has an unsupported scheme")
    if not host:
        raise _refuse_proxy_url("has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _refuse_proxy_url("has a path, query or fragment")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return EgressProxy(
        scheme=scheme,
        host=host,
        port=port or _DEFAULT_PORTS[scheme],
        username=username,
        password=password,
        no_proxy=no_proxy or NoProxy(),
    )


def _is_host_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and all(_LABEL_RE.match(label) for label in labels)


def parse_no_proxy(text: str) -> NoProxy:
    """Parse ``HERALD_DELIVERY_NO_PROXY``: comma-separated host names (``.example.com`` and
    ``*.example.com`` are ``example.com``: the name and the names under it), IP addresses, CIDR
    networks, or ``*`` (no request goes through the proxy). A malformed entry raises
    ``ValueError`` naming the variable and the entry."""
    names: list[str] = []
    networks: list[IPNetwork] = []
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if "*" in entries:
        return NoProxy(everything=True)
    for position, entry in enumerate(entries, 1):
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().removeprefix("*.").lstrip(".").rstrip(".")
        if not name or not _is_host_name(name):
            raise ValueError(
                f"{NO_PROXY_SETTING} entry #{position} ({entry!r}) is neither a host name, "
                "an IP address nor a CIDR network"
            )
        names.append(name)
    return NoProxy(names=tuple(names), networks=tuple(networks))
