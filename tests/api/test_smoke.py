from __future__ import annotations

import httpx

from miva_connect.channels.service import RegisteredChannel
from tests.conftest import SandboxServer
from tests.helpers import open_session


async def test_full_onboarding(
    client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
) -> None:
    store = sandbox.new_store("Smoke Store")
    token = sandbox.new_token()
    session = await open_session(client, channel)
    response = await client.post(
        f"/v1/sessions/{session}/store-url", json={"store_url": sandbox.base_url + "/mm5/"}
    )
    assert response.status_code == 200, response.text
    response = await client.post(
        f"/v1/sessions/{session}/credentials",
        json={
            "store_code": store.code,
            "api_key": token.access_token,
            "signing_key": token.signing_key,
        },
    )
    assert response.status_code == 200, response.text
    print(response.json())
