from __future__ import annotations

import pytest

from miva_connect.clientip import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.1", None, "198.51.100.1"),
        ("198.51.100.1", "1.2.3.4", "198.51.100.1"),  # not a trusted proxy: header ignored
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # spoofed left entry skipped
        ("10.0.0.5", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # our own hops skipped
        ("10.0.0.5", "10.0.0.6, 10.0.0.7", "10.0.0.5"),  # only proxies: account to the peer
        ("10.0.0.5", "garbage", "10.0.0.5"),
        ("2001:db8::1", "2001:db9::5", "2001:db9::5"),
        (None, "1.2.3.4", "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected
