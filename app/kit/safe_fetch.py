"""The SSRF fence for fetches whose URL comes from outside (client metadata documents, their
jwks_uri, logos): every address a host resolves to must be public, and the connection goes to the
address that was checked (TLS SNI, certificate verification and the Host header still use the
hostname), so DNS cannot answer differently between the check and the connect.

Use it as an httpx transport's network backend:
`httpx.AsyncHTTPTransport(...)` with `network_backend=PinnedBackend(allow_loopback=False)`, or
take a whole connection pool from `pinned_pool`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx
from typing_extensions import override

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL's host is not one an outside-directed fetch may reach."""


# --- addresses -----------------------------------------------------------------------------------

_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: tunnels to an arbitrary IPv4 address
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


def is_public_address(address: str | IPAddress) -> bool:
    """Whether an IP address is ordinary public unicast, safe to send a server-side request to.

    Refuses private, loopback, link-local, CGNAT, multicast, broadcast, reserved, unspecified,
    documentation and benchmarking ranges, and IPv6 forms that embed such an IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if ip not in _GLOBAL_UNICAST_V6 or any(ip in net for net in _BLOCKED_V6):
            return False
    elif any(ip in net for net in _BLOCKED_V4):
        return False
    # Belt and braces: whatever the standard library knows to be special is refused too.
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_reserved or ip.is_link_local or ip.is_loopback
    )


def address_permitted(ip: IPAddress, *, allow_loopback: bool) -> bool:
    # Draft §6.5 (-latest): servers "MUST NOT fetch a Client ID Metadata Document URL ... that
    # resolve[s] to special-use IP addresses"; the loopback relaxation is for development and
    # testing only and "MUST NOT" be applied in production.
    if allow_loopback and (ip == _LOOPBACK_V6 or (ip.version == 4 and ip in _LOOPBACK_V4)):
        return True
    return is_public_address(ip)


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host once, refuses unless every address is allowed, and connects to those.

    `refuse` is the exception raised for a host that is not allowed (the caller's own error
    type, so its message reaches the person who gave the URL).
    """

    def __init__(
        self, *, allow_loopback: bool, refuse: Callable[[str], Exception] = AddressRefused
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_loopback = allow_loopback
        self._refuse = refuse

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise httpcore.ConnectError("no resolved address accepted the connection") from last_error

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        literal = parse_ip(host)
        if literal is not None:
            candidates = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except (OSError, UnicodeError) as exc:
                raise self._refuse("the host name could not be resolved") from exc
            candidates = []
            for _family, _type, _proto, _canon, sockaddr in infos:
                ip = parse_ip(str(sockaddr[0]))
                if ip is None:
                    raise self._refuse("the host resolves to an address that is not public")
                if ip not in candidates:
                    candidates.append(ip)
        if not candidates:
            raise self._refuse("the host name could not be resolved")
        # Every address must pass, not just the one we would use: a host that also answers with a
        # private address is refused outright.
        if not all(address_permitted(ip, allow_loopback=self._allow_loopback) for ip in candidates):
            raise self._refuse("the host resolves to an address that is not public")
        return candidates

    @override
    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for fetches from outside")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_pool(
    *,
    max_connections: int,
    allow_loopback: bool,
    ca_bundle: str | None = None,
    refuse: Callable[[str], Exception] = AddressRefused,
) -> httpcore.AsyncConnectionPool:
    """A connection pool behind the fence; `ca_bundle` adds trusted roots (tests)."""
    ssl_context = httpx.create_ssl_context()
    if ca_bundle is not None:
        ssl_context.load_verify_locations(cafile=ca_bundle)
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=max_connections,
        # A fresh connection per fetch: each one is resolved and checked again.
        max_keepalive_connections=0,
        retries=0,
        network_backend=PinnedBackend(allow_loopback=allow_loopback, refuse=refuse),
    )
