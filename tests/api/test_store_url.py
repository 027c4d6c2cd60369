from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from miva_connect.settings import Settings
from tests.conftest import SandboxServer, serve_app
from tests.helpers import StubResolver, closed_port, open_session

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def api_offline(sandbox: SandboxServer) -> Iterator[None]:
    sandbox.state.api_offline = True
    try:
        yield
    finally:
        sandbox.state.api_offline = False


async def submit(client: httpx.AsyncClient, channel: RegisteredChannel, url: str) -> httpx.Response:
    token = await open_session(client, channel)
    return await client.post(f"/v1/sessions/{token}/store-url", json={"store_url": url})


class TestStoreUrl:
    @pytest.mark.parametrize(
        "suffix", ["/mm5/json.mvc", "/mm5", "/mm5/", "/mm5/admin.mvc?Screen=SUTL#x", ""]
    )
    async def test_normalises_and_confirms_the_endpoint(
        self,
        client: httpx.AsyncClient,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
        suffix: str,
    ) -> None:
        response = await submit(client, channel, f"  {sandbox.base_url}{suffix}  ")
        assert response.status_code == 200, response.text
        assert response.json() == {"store_url": sandbox.endpoint}

    async def test_session_remembers_the_checked_url(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        token = await open_session(client, channel)
        await client.post(f"/v1/sessions/{token}/store-url", json={"store_url": sandbox.base_url})
        session = await client.get(f"/v1/sessions/{token}")
        assert session.json()["store_url"] == sandbox.endpoint

    async def test_probe_sends_no_credentials(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        before = len(sandbox.state.requests)
        await submit(client, channel, sandbox.base_url)
        probes = sandbox.state.requests[before:]
        assert len(probes) == 1
        assert probes[0].headers["x-miva-api-authorization"] == "MIVA-CONNECT-PROBE probe"
        assert probes[0].body == b"{}"

    @pytest.mark.parametrize(
        ("url", "code"),
        [
            ("not a url", "invalid_store_url"),
            ("ftp://example.com/mm5/", "invalid_store_url"),
            ("http://user:pass@127.0.0.1/mm5/", "store_url_not_allowed"),
        ],
    )
    async def test_bad_urls_are_refused_before_any_request(
        self,
        client: httpx.AsyncClient,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
        url: str,
        code: str,
    ) -> None:
        before = len(sandbox.state.requests)
        response = await submit(client, channel, url)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, "store_url")
        assert "Endpoint URL" in error["message"]
        assert len(sandbox.state.requests) == before

    async def test_nothing_listening_is_store_unreachable(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await submit(client, channel, f"http://127.0.0.1:{closed_port()}/mm5/")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "store_unreachable"

    async def test_unknown_host_name_is_store_unreachable(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await submit(client, channel, "http://store.invalid/mm5/")
        assert response.json()["error"]["code"] == "store_unreachable"

    async def test_failed_tls_handshake_is_store_unreachable(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        # https:// to a plain-HTTP port: the TLS handshake fails.
        url = sandbox.base_url.replace("http://", "https://") + "/mm5/"
        response = await submit(client, channel, url)
        assert response.json()["error"]["code"] == "store_unreachable"

    async def test_redirect_is_reported_not_followed(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        before = len(sandbox.state.requests)
        response = await submit(client, channel, f"{sandbox.base_url}/old/mm5/")
        error = response.json()["error"]
        assert error["code"] == "store_redirected"
        # Scheme, host and port only: the rest of a Location is the store's text.
        assert error["location"] == sandbox.base_url.replace("http://", "https://")
        assert error["location"] in error["message"]
        assert len(sandbox.state.requests) == before + 1

    @pytest.mark.parametrize("path", ["/protected/mm5/", "/html/mm5/", "/empty/mm5/", "/nowhere/"])
    async def test_what_is_not_a_miva_json_api(
        self,
        client: httpx.AsyncClient,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
        path: str,
    ) -> None:
        response = await submit(client, channel, sandbox.base_url + path)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "not_a_miva_store"

    async def test_server_error_is_store_error(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        response = await submit(client, channel, sandbox.base_url + "/broken/mm5/")
        assert response.json()["error"]["code"] == "store_error"

    @pytest.mark.usefixtures("api_offline")
    async def test_api_switched_off(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        response = await submit(client, channel, sandbox.base_url)
        assert response.json()["error"]["code"] == "store_api_offline"


class UnreachableNetwork:
    """Stands in for the Internet under the egress guard: nothing answers, nothing leaves."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        raise httpx.ConnectError("no answer", request=request)


@pytest.fixture
def network() -> UnreachableNetwork:
    return UnreachableNetwork()


@pytest.fixture
async def production_client(
    settings: Settings, network: UnreachableNetwork
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as in production (no private networks, port 8443 allowed), whose names
    resolve from a table and whose network never answers."""
    resolver = StubResolver(
        {
            "down.test": [PUBLIC_IP],
            "internal.test": ["10.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "mixed.test": [PUBLIC_IP, "10.0.0.1"],
            "loopback6.test": ["::ffff:127.0.0.1"],
        }
    )
    production = settings.model_copy(
        update={"allow_private_networks": False, "allowed_ports": [8443]}
    )
    async with serve_app(
        production, miva_resolver=resolver, miva_transport=httpx.MockTransport(network.handle)
    ) as http:
        yield http


class TestEgressPolicy:
    @pytest.mark.parametrize(
        "url",
        [
            "https://internal.test/mm5/",
            "https://metadata.test/mm5/",
            "https://mixed.test/mm5/",
            "https://loopback6.test/mm5/",
            "https://nowhere.test/mm5/",
        ],
    )
    async def test_a_name_resolving_to_a_refused_address_looks_unreachable(
        self,
        production_client: httpx.AsyncClient,
        channel: RegisteredChannel,
        network: UnreachableNetwork,
        url: str,
    ) -> None:
        unreachable = await submit(production_client, channel, "https://down.test/mm5/")
        assert len(network.sent) == 1  # the genuinely unreachable store was tried
        blocked = await submit(production_client, channel, url)
        assert len(network.sent) == 1  # the refused one never left
        assert unreachable.json()["error"]["code"] == "store_unreachable"
        assert blocked.status_code == unreachable.status_code
        assert blocked.json()["error"] == unreachable.json()["error"]
        assert blocked.content == unreachable.content

    @pytest.mark.parametrize(
        "url",
        [
            "https://10.0.0.1/mm5/",
            "https://[::ffff:169.254.169.254]/mm5/",
            "https://100.100.100.200/mm5/",
            "https://localhost/mm5/",
            "https://2130706433/mm5/",
            "http://down.test/mm5/",
            "https://down.test:8080/mm5/",
        ],
    )
    async def test_what_is_refused_as_written_is_not_allowed(
        self,
        production_client: httpx.AsyncClient,
        channel: RegisteredChannel,
        network: UnreachableNetwork,
        url: str,
    ) -> None:
        response = await submit(production_client, channel, url)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("store_url_not_allowed", "store_url")
        assert network.sent == []

    async def test_an_allowed_port_is_called_on_the_checked_address(
        self,
        production_client: httpx.AsyncClient,
        channel: RegisteredChannel,
        network: UnreachableNetwork,
    ) -> None:
        response = await submit(production_client, channel, "https://down.test:8443/mm5/")
        assert response.json()["error"]["code"] == "store_unreachable"
        (sent,) = network.sent
        assert str(sent.url) == f"https://{PUBLIC_IP}:8443/mm5/json.mvc"
        assert sent.headers["Host"] == "down.test:8443"
        assert sent.extensions["sni_hostname"] == "down.test"

    async def test_a_host_httpx_cannot_parse_is_unreachable_not_a_crash(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        # Private networks allow numeric hosts as written; httpx refuses this one to parse.
        response = await submit(client, channel, f"http://0177.0.0.1:{closed_port()}/mm5/")
        assert response.json()["error"]["code"] == "store_unreachable"

    async def test_metadata_is_refused_even_on_private_networks(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await submit(client, channel, "http://169.254.169.254/latest/meta-data/")
        assert response.json()["error"]["code"] == "store_url_not_allowed"
