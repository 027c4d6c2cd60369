"""Outbound requests to URLs that users typed: resolve once, check every address, pin.

httpx has no resolver hook (encode/httpx#1319; #1444 suggests a transport instead), so
`GuardedTransport` wraps the real transport. Per request it:

1. checks the scheme and port against the `AddressPolicy`;
2. resolves the host once (an IP literal is parsed, not resolved) and refuses unless
   there is at least one address and every address passes the policy: resolution errors
   and empty answers fail closed, and httpx is never handed the name to resolve itself;
3. rewrites the URL to the first checked address and delegates. The `Host` header keeps
   the real name and, for https, the `sni_hostname` extension (encode/httpcore#691) makes
   TLS send and verify the real name. The socket goes to the address that was checked,
   so a name that answers a public address first and 127.0.0.1 next (DNS rebinding)
   cannot move the connection.

Pitfalls this design answers:

- getaddrinfo reads `2130706433`, `0x7f000001`, `127.1` and `0177.0.0.1` as 127.0.0.1, and
  httpx passes such hosts on as names: only resolved addresses are judged, never strings.
- Python 3.11's `ipaddress` misjudges embedded IPv4: `::ffff:127.0.0.1` is not loopback
  (fixed in 3.13, python/cpython#117566); `::127.0.0.1`, `64:ff9b::a9fe:a9fe` and
  `2002:7f00:1::1` are `is_global`; so are multicast `224.0.0.1`, Azure's `168.63.129.16`
  and site-local `fec0::/10`; CGNAT `100.64.0.0/10` is not `is_private`. So IPv4 inside
  IPv6 is unwrapped and judged itself, and an explicit deny list backs `is_global`.
- httpcore pools connections by scheme, address and port, not by TLS name: a connection
  verified for one name would be reused for another name on the same address. https
  requests therefore ask for `Connection: close`.
- The `sni_hostname` extension does not work through an HTTP proxy (encode/httpcore#934);
  the inner transport is built with `trust_env=False` so no proxy or CA variable applies.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any, Protocol

import httpx

IPAddress = IPv4Address | IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}

# Refused even when private networks are allowed: no store lives here, credentials do.
ALWAYS_DENIED: tuple[IPv4Network | IPv6Network, ...] = (
    IPv4Network("0.0.0.0/8"),  # "this network": 0.0.0.0 reaches the local host
    IPv4Network("169.254.0.0/16"),  # link-local: metadata 169.254.169.254, ECS 169.254.170.2
    IPv4Network("100.100.100.200/32"),  # Alibaba Cloud metadata
    IPv4Network("168.63.129.16/32"),  # Azure WireServer
    IPv4Network("192.0.0.0/24"),  # IETF protocol assignments
    IPv6Network("fd00:ec2::/32"),  # AWS metadata, DNS and NTP over IPv6 (fd00:ec2::254)
    IPv6Network("fe80::/10"),  # link-local
)
# Refused unless private networks are allowed, on top of everything not `is_global`.
PUBLIC_DENIED: tuple[IPv4Network | IPv6Network, ...] = (
    IPv4Network("100.64.0.0/10"),  # CGNAT, which `ipaddress` calls neither private nor global
    IPv4Network("198.18.0.0/15"),  # benchmarking
    IPv6Network("fec0::/10"),  # deprecated site-local, `is_global` on 3.11
)
# IPv6 forms that carry an IPv4 destination: judged by that IPv4 address alone.
_MAPPED = IPv6Network("::ffff:0:0/96")
_COMPATIBLE = IPv6Network("::/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # SIIT
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_TRANSLATIONS = (_MAPPED, _COMPATIBLE, _TRANSLATED, _NAT64, _NAT64_LOCAL)
# RFC 6052: the IPv4 bytes for NAT64 prefixes of length 48, 56, 64 and 96 (byte 8 is `u`).
_NAT64_LOCAL_BYTES = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12), (12, 13, 14, 15))


class DestinationRefused(httpx.TransportError):
    """The request was not sent: the destination is outside the policy, or unknown."""

    def __init__(self, reason: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(reason, request=request)
        self.reason = reason


@dataclass(frozen=True)
class AddressPolicy:
    """Where outbound requests may go.

    By default: https, port 443 (plus `allowed_ports`), public unicast addresses only.
    `allow_private` admits http, any port, loopback and private ranges (development and
    tests); the `ALWAYS_DENIED` ranges, multicast, reserved and unspecified stay refused.
    """

    allow_private: bool
    allowed_ports: frozenset[int] = frozenset()

    def allows_scheme(self, scheme: str) -> bool:
        return scheme == "https" or (self.allow_private and scheme == "http")

    def allows_port(self, port: int) -> bool:
        if self.allow_private:
            return 0 < port < 65536
        return port == 443 or port in self.allowed_ports

    def is_allowed(self, ip: IPAddress) -> bool:
        """Whether a connection to `ip` is allowed, embedded IPv4 unwrapped."""
        if isinstance(ip, IPv6Address):
            embedded = embedded_ipv4(ip)
            if not all(self._allows(inner) for inner in embedded):
                return False
            if embedded and any(ip in net for net in _TRANSLATIONS):
                return True  # the IPv6 form only says how to reach the IPv4 address
        return self._allows(ip)

    def check(self, ip: IPAddress) -> None:
        """Raise `DestinationRefused` unless `is_allowed(ip)`."""
        if not self.is_allowed(ip):
            raise DestinationRefused("address not allowed")

    def _allows(self, ip: IPAddress) -> bool:
        if ip.is_multicast or ip.is_unspecified or any(ip in net for net in ALWAYS_DENIED):
            return False
        if isinstance(ip, IPv4Address) and ip.is_reserved:  # 240.0.0.0/4, broadcast
            return False
        if self.allow_private:
            return True
        return ip.is_global and not ip.is_reserved and not any(ip in n for n in PUBLIC_DENIED)


def embedded_ipv4(ip: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, ...)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in _NAT64_LOCAL:
        return [IPv4Address(bytes(ip.packed[i] for i in at)) for at in _NAT64_LOCAL_BYTES]
    in_last_32_bits = (_NAT64, _TRANSLATED, _COMPATIBLE)
    if any(ip in net for net in in_last_32_bits) and int(ip) > 1:  # not :: or ::1
        return [IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, for TCP; raise `OSError` if it does not."""
        ...


class SystemResolver:
    """The system's resolver (getaddrinfo, both families, TCP) on threads of its own.

    A lookup that never answers keeps its thread even after the deadline cancels the
    wait. In the loop's shared executor a few such names would stall everything else that
    resolves there (the database driver too), so lookups get their own bounded pool, and
    a full pool refuses at once instead of queueing.
    """

    def __init__(self, max_lookups: int = 16) -> None:
        self._executor = ThreadPoolExecutor(max_lookups, thread_name_prefix="store-dns")
        self._slots = threading.BoundedSemaphore(max_lookups)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if not self._slots.acquire(blocking=False):
            raise DestinationRefused("too many lookups in progress")
        loop = asyncio.get_running_loop()
        infos = await loop.run_in_executor(self._executor, self._lookup, host, port)
        return list(dict.fromkeys(ip_address(str(info[4][0])) for info in infos))

    def _lookup(self, host: str, port: int) -> list[Any]:
        try:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        finally:
            self._slots.release()  # when the thread is free again, not when the wait ends


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request to a checked address of its host, or raises `DestinationRefused`."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self._resolver = resolver or SystemResolver()
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = DEFAULT_PORTS.get(url.scheme, 0) if url.port is None else url.port
        if not self.policy.allows_scheme(url.scheme):
            raise DestinationRefused("scheme not allowed", request=request)
        if url.userinfo:
            raise DestinationRefused("user info in the URL", request=request)
        if not self.policy.allows_port(port):
            raise DestinationRefused("port not allowed", request=request)
        host = url.raw_host.decode("ascii")
        address = await self._checked_address(request, host, port)
        extensions = dict(request.extensions)
        headers = request.headers.copy()
        if url.scheme == "https":
            extensions["sni_hostname"] = host
            headers["Connection"] = "close"  # a pooled TLS connection is verified for one name
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=str(address)),
            headers=headers,  # `Host` stays the name from the URL
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _checked_address(self, request: httpx.Request, host: str, port: int) -> IPAddress:
        try:
            addresses: list[IPAddress] = [ip_address(host)]
        except ValueError:
            addresses = await self._resolve(request, host, port)
        if not addresses:
            raise DestinationRefused("no addresses", request=request)
        if not all(self.policy.is_allowed(address) for address in addresses):
            raise DestinationRefused("address not allowed", request=request)
        return addresses[0]

    async def _resolve(self, request: httpx.Request, host: str, port: int) -> list[IPAddress]:
        timeout = request.extensions.get("timeout", {}).get("connect")
        try:
            async with asyncio.timeout(timeout):
                return list(await self._resolver.resolve(host, port))
        except TimeoutError:
            raise httpx.ConnectTimeout("name resolution timed out", request=request) from None
        except (OSError, UnicodeError, ValueError):
            raise DestinationRefused("name resolution failed", request=request) from None
