"""The egress guard: the address policy, refused targets that never reach the network,
one lookup per request, and pinned TLS connections that still verify the real name."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

import aiohttp
import httpcore
import httpx
import pytest
import trustme

from miva_connect import miva
from miva_connect.egress import AddressPolicy, DestinationRefused, GuardedTransport
from miva_connect.errors import ValidationFailed
from miva_connect.miva import store_http_client
from miva_connect.miva.http import AiohttpNetwork, NetworkKind, network_transport
from miva_connect.onboarding.validation import StoreValidator
from tests.conftest import SandboxServer
from tests.helpers import StubResolver

PUBLIC = AddressPolicy(allow_private=False)
PRIVATE = AddressPolicy(allow_private=True)
PUBLIC_IP = "93.184.216.34"
PUBLIC_IP_2 = "93.184.216.35"
ENDPOINT = "/mm5/json.mvc"


@dataclass
class Network:
    """The guard's inner transport: records every request that would have hit the network."""

    sent: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json={"success": 1})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def guarded(
    policy: AddressPolicy, resolver: StubResolver, network: Network | None = None
) -> httpx.AsyncClient:
    inner = (network or Network()).transport()
    return store_http_client(timeout=2, policy=policy, resolver=resolver, transport=inner)


# -- the address policy -------------------------------------------------------------------

# SSRF-3's table, and what Python 3.11's flags get wrong; refused without private networks.
NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",  # noqa: S104 (an address to refuse)
    "0.1.2.3",
    "::",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.170.2",
    "100.64.0.1",
    "100.100.100.200",
    "168.63.129.16",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.0.170",
    "192.0.2.1",
    "fd00:ec2::254",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "::ffff:0:7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a9fe:a9fe",
    "64:ff9b:1:7f00:1::",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
    "100::1",
]
# Refused even when private networks are allowed: metadata and addresses that are no host.
ALWAYS_REFUSED = [
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "100.100.100.200",
    "168.63.129.16",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "0.0.0.0",  # noqa: S104 (an address to refuse)
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "fe80::1",
]
PUBLIC_ADDRESSES = [
    PUBLIC_IP,
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::1",
]


class TestAddressPolicy:
    @pytest.mark.parametrize("address", NOT_PUBLIC)
    def test_refuses_what_is_not_public_unicast(self, address: str) -> None:
        assert not PUBLIC.is_allowed(ip_address(address))
        with pytest.raises(DestinationRefused):
            PUBLIC.check(ip_address(address))

    @pytest.mark.parametrize("address", ALWAYS_REFUSED)
    def test_metadata_stays_refused_on_private_networks(self, address: str) -> None:
        assert not PRIVATE.is_allowed(ip_address(address))

    @pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
    def test_allows_public_unicast_also_inside_ipv6(self, address: str) -> None:
        assert PUBLIC.is_allowed(ip_address(address))
        assert PRIVATE.is_allowed(ip_address(address))

    @pytest.mark.parametrize(
        "address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "100.64.0.1", "fd12::1"]
    )
    def test_private_networks_allow_loopback_and_private_ranges(self, address: str) -> None:
        assert PRIVATE.is_allowed(ip_address(address))

    def test_scheme_and_port(self) -> None:
        assert PUBLIC.allows_scheme("https")
        assert not PUBLIC.allows_scheme("http")
        assert PUBLIC.allows_port(443)
        assert not any(PUBLIC.allows_port(port) for port in (0, 22, 80, 8443))
        extra = AddressPolicy(allow_private=False, allowed_ports=frozenset({8443}))
        assert extra.allows_port(8443)
        assert not extra.allows_port(8080)
        assert PRIVATE.allows_scheme("http")
        assert not PRIVATE.allows_scheme("gopher")
        assert PRIVATE.allows_port(8100)
        assert not PRIVATE.allows_port(0)


# -- refused targets never reach the network ----------------------------------------------

NAMES = {
    "localhost.test": ["127.0.0.1", "::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "internal.test": ["10.0.0.1"],
    "cgnat.test": ["100.64.0.1"],
    "azure.test": ["168.63.129.16"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "ec2v6.test": ["fd00:ec2::254"],
    "mixed.test": [PUBLIC_IP, "10.0.0.1"],
    "mixed6.test": ["2606:4700:4700::1111", "::1"],
    "private-first.test": ["192.168.0.1", PUBLIC_IP],
    "empty.test": [],
}


def _literal(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}{ENDPOINT}"


REFUSED_TARGETS = (
    [pytest.param(_literal(a), id=f"literal-{a}") for a in NOT_PUBLIC]
    + [pytest.param(f"https://{name}{ENDPOINT}", id=f"name-{name}") for name in NAMES]
    + [
        pytest.param("https://unknown.test/mm5/json.mvc", id="resolution-fails"),
        pytest.param(f"http://{PUBLIC_IP}{ENDPOINT}", id="http"),
        pytest.param(f"https://{PUBLIC_IP}:22{ENDPOINT}", id="port-22"),
        pytest.param(f"https://{PUBLIC_IP}:8443{ENDPOINT}", id="port-8443"),
        pytest.param(f"https://{PUBLIC_IP}:0{ENDPOINT}", id="port-0"),
        pytest.param(f"https://u:p@{PUBLIC_IP}{ENDPOINT}", id="userinfo"),
        pytest.param(f"gopher://{PUBLIC_IP}:443/", id="gopher"),
    ]
)
# getaddrinfo reads these as IPv4 and httpx passes them on as names: the system resolver
# answers them locally, without DNS.
ENCODED_LOOPBACK = ["2130706433", "0x7f000001", "127.1", "017700000001", "0x7f.1", "0"]


class TestRefusedTargets:
    def test_the_table_is_big_enough(self) -> None:
        assert len(REFUSED_TARGETS) + len(ENCODED_LOOPBACK) >= 40

    @pytest.mark.parametrize("url", REFUSED_TARGETS)
    async def test_is_refused_without_a_connection(self, url: str) -> None:
        network = Network()
        async with guarded(PUBLIC, StubResolver(NAMES), network) as http:
            with pytest.raises(DestinationRefused):
                await http.post(url, content=b"{}")
        assert network.sent == []

    @pytest.mark.parametrize("host", ENCODED_LOOPBACK)
    async def test_encoded_ipv4_is_judged_after_resolution(self, host: str) -> None:
        network = Network()
        inner = network.transport()
        async with store_http_client(timeout=2, policy=PUBLIC, transport=inner) as http:
            with pytest.raises(DestinationRefused):
                await http.post(f"https://{host}{ENDPOINT}", content=b"{}")
        assert network.sent == []

    @pytest.mark.parametrize("url", ["https://0177.0.0.1/mm5/", "https://①②⑦.0.0.1/mm5/"])
    async def test_hosts_httpx_cannot_parse_are_transport_errors(self, url: str) -> None:
        network = Network()
        async with guarded(PUBLIC, StubResolver(), network) as http:
            with pytest.raises(miva.TransportError):
                await miva.probe(http, url)
        assert network.sent == []

    @pytest.mark.parametrize("url", [_literal(a) for a in ALWAYS_REFUSED])
    async def test_metadata_is_refused_on_private_networks(self, url: str) -> None:
        network = Network()
        async with guarded(PRIVATE, StubResolver(), network) as http:
            with pytest.raises(DestinationRefused):
                await http.post(url, content=b"{}")
        assert network.sent == []

    async def test_the_miva_client_reports_a_blocked_destination(self) -> None:
        network = Network()
        resolver = StubResolver({"internal.test": ["10.0.0.1"]})
        async with guarded(PUBLIC, resolver, network) as http:
            with pytest.raises(miva.BlockedDestination) as caught:
                await miva.probe(http, "https://internal.test/mm5/json.mvc")
        assert isinstance(caught.value, miva.TransportError)
        assert caught.value.reason == "address not allowed"
        assert network.sent == []


# -- resolve once, pin the first checked address ------------------------------------------


class RebindingResolver(StubResolver):
    """A public address on the first lookup, loopback on every later one."""

    async def resolve(self, host: str, port: int) -> list[IPv4Address | IPv6Address]:
        self.calls.append(host)
        return [ip_address(PUBLIC_IP if len(self.calls) == 1 else "127.0.0.1")]


class TestPinning:
    async def test_one_lookup_per_request_and_the_checked_address_is_used(self) -> None:
        network, resolver = Network(), RebindingResolver()
        async with guarded(PUBLIC, resolver, network) as http:
            await miva.probe(http, "https://rebind.test/mm5/json.mvc")
            assert resolver.calls == ["rebind.test"]
            (sent,) = network.sent
            assert sent.url.host == PUBLIC_IP
            assert sent.headers["Host"] == "rebind.test"
            assert sent.extensions["sni_hostname"] == "rebind.test"
            # The next request looks the name up again, and the new answer is refused.
            with pytest.raises(miva.BlockedDestination):
                await miva.probe(http, "https://rebind.test/mm5/json.mvc")
        assert resolver.calls == ["rebind.test", "rebind.test"]
        assert len(network.sent) == 1

    async def test_connects_to_the_first_of_several_addresses(self) -> None:
        network = Network()
        resolver = StubResolver({"shop.test": [PUBLIC_IP, PUBLIC_IP_2]})
        async with guarded(PUBLIC, resolver, network) as http:
            response = await http.post("https://shop.test:443/mm5/json.mvc", content=b"{}")
        assert response.request.url.host == "shop.test"  # what callers see is unchanged
        (sent,) = network.sent
        assert str(sent.url) == f"https://{PUBLIC_IP}/mm5/json.mvc"
        assert sent.headers["Host"] == "shop.test"
        assert sent.headers["Connection"] == "close"
        assert sent.content == b"{}"
        assert resolver.calls == ["shop.test"]

    async def test_ip_literals_are_not_resolved(self) -> None:
        network, resolver = Network(), StubResolver()
        async with guarded(PUBLIC, resolver, network) as http:
            await http.post(_literal("2606:4700:4700::1111"), content=b"{}")
        assert resolver.calls == []
        assert network.sent[0].url.host == "2606:4700:4700::1111"

    async def test_configured_ports_are_allowed(self) -> None:
        network = Network()
        policy = AddressPolicy(allow_private=False, allowed_ports=frozenset({8443}))
        async with guarded(policy, StubResolver({"shop.test": [PUBLIC_IP]}), network) as http:
            await http.post("https://shop.test:8443/mm5/json.mvc", content=b"{}")
        assert str(network.sent[0].url) == f"https://{PUBLIC_IP}:8443/mm5/json.mvc"
        assert network.sent[0].headers["Host"] == "shop.test:8443"

    async def test_a_hanging_resolver_is_cut_off_by_the_deadline(self) -> None:
        class Hanging(StubResolver):
            async def resolve(self, host: str, port: int) -> list[IPv4Address | IPv6Address]:
                await asyncio.sleep(60)
                raise AssertionError("not reached")

        network = Network()
        async with guarded(PUBLIC, Hanging(), network) as http:
            validator = StoreValidator(http, deadline=0.3, egress_ips=[])
            started = time.monotonic()
            with pytest.raises(ValidationFailed) as caught:
                await validator.check_endpoint("https://slow-dns.test/mm5/json.mvc")
        assert time.monotonic() - started < 2
        assert caught.value.code == "store_unreachable"
        assert network.sent == []


# -- TLS to a pinned address ------------------------------------------------------------


@dataclass
class TlsStore:
    port: int
    client_context: ssl.SSLContext
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    connections: int = 0
    network: NetworkKind = "aiohttp"


async def _answer(store: TlsStore, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    store.connections += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            headers = {k.lower(): v for k, v in headers.items()}
            await reader.readexactly(int(headers.get("content-length", "0")))
            store.hosts.append(headers["host"])
            body = b'{"success":0,"error_code":"access_denied","error_message":"x"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@pytest.fixture(scope="module")
async def _tls_store() -> AsyncIterator[TlsStore]:
    """An https json.mvc on 127.0.0.1 with a certificate for `merchant.test` only."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("merchant.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    store = TlsStore(port=0, client_context=client_context)

    def sni(_sock: object, name: str | None, _context: object) -> None:
        store.server_names.append(name)

    server_context.sni_callback = sni
    server = await asyncio.start_server(
        lambda r, w: _answer(store, r, w), "127.0.0.1", 0, ssl=server_context
    )
    store.port = server.sockets[0].getsockname()[1]
    async with server:
        yield store
        server.close()
        await server.wait_closed()


def tls_client(store: TlsStore, resolver: StubResolver) -> httpx.AsyncClient:
    # Loopback is allowed here only because the test store lives there.
    inner = network_transport(store.network, verify=store.client_context)
    return store_http_client(timeout=2, policy=PRIVATE, resolver=resolver, transport=inner)


@pytest.fixture(params=["aiohttp", "httpcore"])
def tls_store(request: pytest.FixtureRequest, _tls_store: TlsStore) -> TlsStore:
    """The https store, reached through each network transport in turn."""
    _tls_store.network = request.param
    return _tls_store


class TestTls:
    async def test_pinned_connection_verifies_the_real_name(self, tls_store: TlsStore) -> None:
        resolver = StubResolver({"merchant.test": ["127.0.0.1"]})
        url = f"https://merchant.test:{tls_store.port}/mm5/json.mvc"
        async with tls_client(tls_store, resolver) as http:
            await miva.probe(http, url)
        assert tls_store.hosts[-1] == f"merchant.test:{tls_store.port}"
        assert tls_store.server_names[-1] == "merchant.test"
        assert resolver.calls == ["merchant.test"]

    async def test_another_name_on_the_same_address_fails_verification(
        self, tls_store: TlsStore
    ) -> None:
        resolver = StubResolver({"merchant.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        async with tls_client(tls_store, resolver) as http:
            served = len(tls_store.hosts)
            with pytest.raises(miva.TransportError) as caught:
                await miva.probe(http, f"https://other.test:{tls_store.port}/mm5/json.mvc")
            assert not isinstance(caught.value, miva.BlockedDestination)
            assert isinstance(caught.value.__cause__, httpx.TransportError)
            assert len(tls_store.hosts) == served

    async def test_a_verified_connection_is_not_reused_for_another_name(
        self, tls_store: TlsStore
    ) -> None:
        # httpcore pools by address; without `Connection: close` the second request would
        # ride the connection verified for merchant.test.
        resolver = StubResolver({"merchant.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        async with tls_client(tls_store, resolver) as http:
            await miva.probe(http, f"https://merchant.test:{tls_store.port}/mm5/json.mvc")
            with pytest.raises(miva.TransportError):
                await miva.probe(http, f"https://other.test:{tls_store.port}/mm5/json.mvc")


# -- nothing from the environment ---------------------------------------------------------


@pytest.mark.parametrize("network", ["aiohttp", "httpcore"])
async def test_proxy_and_certificate_variables_change_nothing(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer, network: NetworkKind
) -> None:
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")
    port = httpx.URL(sandbox.base_url).port
    resolver = StubResolver({"merchant.test": ["127.0.0.1"]})
    # Built under these variables: a transport that read SSL_CERT_FILE would fail here.
    http = store_http_client(timeout=2, policy=PRIVATE, resolver=resolver, network=network)
    async with http:
        guard = http._transport
        assert isinstance(guard, GuardedTransport)
        assert http._mounts == {}
        assert not http.trust_env
        before = len(sandbox.state.requests)
        await miva.probe(http, f"http://merchant.test:{port}/mm5/json.mvc")
        inner = guard._inner
        if isinstance(inner, AiohttpNetwork):
            assert inner.proxy is None
            assert isinstance(inner.client, aiohttp.ClientSession)
            assert not inner.client.trust_env
        else:
            assert isinstance(inner, httpx.AsyncHTTPTransport)
            assert type(inner._pool) is httpcore.AsyncConnectionPool  # not a proxy pool
    (request,) = sandbox.state.requests[before:]
    assert request.headers["host"] == f"merchant.test:{port}"
    assert resolver.calls == ["merchant.test"]


def test_allowed_ports_setting_feeds_the_one_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from miva_connect.app import address_policy
    from miva_connect.settings import Settings

    monkeypatch.delenv("MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS", raising=False)
    monkeypatch.setenv("MIVA_CONNECT_ALLOWED_PORTS", " 8443, 9443 ,")
    settings = Settings(_env_file=None)
    assert settings.allowed_ports == [8443, 9443]
    assert address_policy(settings) == AddressPolicy(False, frozenset({8443, 9443}))
    monkeypatch.setenv("MIVA_CONNECT_ALLOWED_PORTS", "")
    assert address_policy(Settings(_env_file=None)) == PUBLIC
    monkeypatch.setenv("MIVA_CONNECT_ALLOWED_PORTS", "70000")
    with pytest.raises(ValueError, match="allowed_ports"):
        Settings(_env_file=None)
