from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from miva_connect.channels.service import RegisteredChannel
from miva_connect.db.engine import Database
from miva_connect.db.models import OnboardingSession
from tests.conftest import SandboxServer
from tests.helpers import channel_auth, open_session


async def expire(database: Database, token: str) -> None:
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    async with database.transaction() as tx:
        await tx.execute(
            update(OnboardingSession)
            .where(OnboardingSession.token_hash == token_hash)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


class TestCreateSession:
    async def test_channel_opens_a_session(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, database: Database
    ) -> None:
        response = await client.post(
            "/v1/sessions", json={"state": "abc"}, auth=channel_auth(channel)
        )
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "pending"
        assert len(body["id"]) >= 43
        assert body["connect_url"] == f"http://testserver/connect/sessions/{body['id']}"
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
        async with database.transaction() as tx:
            stored = (await tx.scalars(select(OnboardingSession.token_hash))).all()
        assert body["id"] not in stored
        assert hashlib.sha256(body["id"].encode()).hexdigest() in stored

    async def test_without_credentials_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/sessions", json={"state": "abc"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json()["error"]["code"] == "unauthorized"

    @pytest.mark.parametrize("wrong", ["secret", "id"])
    async def test_wrong_channel_credentials_401(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, wrong: str
    ) -> None:
        auth = (
            httpx.BasicAuth(channel.id, channel.secret + "x")
            if wrong == "secret"
            else httpx.BasicAuth("00000000-0000-0000-0000-000000000000", channel.secret)
        )
        response = await client.post("/v1/sessions", json={"state": "abc"}, auth=auth)
        assert response.status_code == 401

    async def test_state_longer_than_512_is_refused(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await client.post(
            "/v1/sessions", json={"state": "s" * 513}, auth=channel_auth(channel)
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_state", "state")
        assert "512" in error["message"]

    async def test_body_that_is_not_json_422(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await client.post(
            "/v1/sessions",
            content=b"{nope",
            headers={"content-type": "application/json"},
            auth=channel_auth(channel),
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"


class TestReadSession:
    async def test_pending_session(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        token = await open_session(client, channel)
        response = await client.get(f"/v1/sessions/{token}")
        assert response.status_code == 200
        assert response.json()["status"] == "pending"
        assert response.json()["store_url"] is None

    async def test_unknown_session_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/sessions/" + "x" * 43)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"

    async def test_expired_session_410(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, database: Database
    ) -> None:
        token = await open_session(client, channel)
        await expire(database, token)
        for method, path in [
            ("GET", ""),
            ("POST", "/store-url"),
            ("POST", "/credentials"),
            ("GET", "/redirect"),
        ]:
            body = {"store_url": "x", "store_code": "x", "api_key": "x"}
            response = await client.request(method, f"/v1/sessions/{token}{path}", json=body)
            assert response.status_code == 410, path
            assert response.json()["error"]["code"] == "session_expired"


class TestExpiry:
    async def test_a_connected_session_expires_too(
        self,
        client: httpx.AsyncClient,
        channel: RegisteredChannel,
        database: Database,
        sandbox: SandboxServer,
    ) -> None:
        store, token = sandbox.new_store(), sandbox.new_token()
        session = await open_session(client, channel)
        body = {
            "store_url": sandbox.endpoint,
            "store_code": store.code,
            "api_key": token.access_token,
            "signing_key": token.signing_key,
        }
        assert (await client.post(f"/v1/sessions/{session}/credentials", json=body)).is_success
        await expire(database, session)
        assert (await client.get(f"/v1/sessions/{session}/redirect")).status_code == 410


class TestBrowserEntry:
    async def test_channel_link_opens_a_session_and_lands_on_its_page(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await client.get(f"/connect/{channel.slug}", params={"state": "from-link"})
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith("http://testserver/connect/sessions/")
        page = await client.get(location)
        assert page.status_code == 200
        assert "Test Channel" in page.text
        assert page.headers["cache-control"] == "no-store"

    async def test_unknown_channel_link_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/connect/no-such-channel", params={"state": "x"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "channel_not_found"

    async def test_redirect_before_connecting_409(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        token = await open_session(client, channel)
        response = await client.get(f"/v1/sessions/{token}/redirect")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "session_not_connected"


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)
