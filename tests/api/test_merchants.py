from __future__ import annotations

import httpx

from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.db.engine import Database
from tests.conftest import SandboxServer
from tests.helpers import channel_auth, open_session


async def connect(
    client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
) -> tuple[str, str]:
    store = sandbox.new_store("Read Store")
    token = sandbox.new_token(require_signature=False)
    session = await open_session(client, channel)
    response = await client.post(
        f"/v1/sessions/{session}/credentials",
        json={
            "store_url": sandbox.endpoint,
            "store_code": store.code,
            "api_key": token.access_token,
            "signing_key": token.signing_key,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["merchant_id"]), store.code


class TestReadMerchant:
    async def test_channel_reads_its_merchant_without_secrets(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        merchant_id, store_code = await connect(client, channel, sandbox)
        response = await client.get(f"/v1/merchants/{merchant_id}", auth=channel_auth(channel))
        assert response.status_code == 200
        body = response.json()
        assert body["merchant_id"] == merchant_id
        assert body["store_url"] == sandbox.endpoint
        assert body["store_code"] == store_code
        assert body["store_name"] == "Read Store"
        assert body["status"] == "connected"
        assert body["signature_enforced"] is False
        assert len(body["verified_groups"]) == 3
        assert set(body) == {
            "merchant_id",
            "store_url",
            "store_code",
            "store_name",
            "status",
            "verified_groups",
            "signature_enforced",
            "created_at",
            "updated_at",
            "connected_at",
        }

    async def test_other_channels_cannot_see_it(
        self,
        client: httpx.AsyncClient,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
        database: Database,
    ) -> None:
        merchant_id, _ = await connect(client, channel, sandbox)
        other = await ChannelService(database).register("Nosy", "https://nosy.example/")
        response = await client.get(f"/v1/merchants/{merchant_id}", auth=channel_auth(other))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    async def test_requires_channel_auth(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        merchant_id, _ = await connect(client, channel, sandbox)
        assert (await client.get(f"/v1/merchants/{merchant_id}")).status_code == 401
