"""Response headers, host checks and CORS."""

from __future__ import annotations

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from miva_connect.settings import Settings
from tests.conftest import serve_app
from tests.helpers import channel_auth, open_session


class TestSecurityHeaders:
    async def test_every_kind_of_answer_carries_them(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        answers = [
            await client.get("/healthz"),
            await client.post("/v1/sessions", json={"state": "x"}, auth=channel_auth(channel)),
            await client.get(f"/connect/sessions/{session}"),
            await client.get(f"/v1/sessions/{session}"),
            await client.post(f"/v1/sessions/{session}/credentials", json={}),
            await client.get("/nowhere"),
        ]
        for response in answers:
            headers = response.headers
            assert headers["strict-transport-security"].startswith("max-age=31536000")
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["cache-control"] == "no-store"
            csp = headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert "server" not in headers

    async def test_docs_exist_only_in_development(self, settings: Settings) -> None:
        async with serve_app(settings) as http:
            assert (await http.get("/docs")).status_code == 200
        production = settings.model_copy(
            update={"environment": "production", "allow_private_networks": False}
        )
        async with serve_app(production) as http:
            assert (await http.get("/docs")).status_code == 404
            assert (await http.get("/openapi.json")).status_code == 200


class TestHosts:
    async def test_unknown_host_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/sessions/", json={}, headers={"Host": "evil.example"})
        assert response.status_code == 400
        assert "location" not in response.headers

    async def test_health_probes_arrive_by_address(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Host": "10.1.2.3:8000"})
        assert response.status_code == 200

    async def test_configured_extra_hosts(self, settings: Settings) -> None:
        tuned = settings.model_copy(update={"allowed_hosts": ["connect.example.com"]})
        async with serve_app(tuned) as http:
            ok = await http.get("/v1/sessions/x", headers={"Host": "connect.example.com"})
            assert ok.status_code == 404  # routed, not refused


class TestCors:
    @pytest.mark.parametrize("method", ["OPTIONS", "GET"])
    async def test_closed_by_default(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(
            method,
            "/v1/sessions/x",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in response.headers

    async def test_open_to_configured_origins_only(self, settings: Settings) -> None:
        tuned = settings.model_copy(update={"cors_allowed_origins": ["https://app.example"]})
        async with serve_app(tuned) as http:
            preflight = {"Access-Control-Request-Method": "POST"}
            good = await http.options(
                "/v1/sessions/x", headers={"Origin": "https://app.example", **preflight}
            )
            bad = await http.options(
                "/v1/sessions/x", headers={"Origin": "https://evil.example", **preflight}
            )
        assert good.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in bad.headers
