"""Who is calling: the socket peer, unless that peer is one of our trusted proxies.

Only then is `X-Forwarded-For` read, right to left, skipping our own proxies: the first
address a trusted proxy saw is the client. Anyone else's `X-Forwarded-For` is ignored,
so a rotating, spoofed header cannot buy a fresh rate-limit budget.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def rate_key(address: str) -> str:
    """Whom to count a request against: IPv4 as is, IPv6 by its /64 (one subscriber gets
    a whole /64, so single addresses are free to rotate), IPv4-mapped IPv6 as IPv4."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The address to account a request to."""
    if not peer:
        return "unknown"
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a trusted proxy appends real addresses; garbage here is misconfiguration
        if not _trusted(hop, proxies):
            return hop
    return peer
