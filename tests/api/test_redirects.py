"""The way back to the channel: only the registered URL, and `state` exactly as sent."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from tests.conftest import SandboxServer
from tests.helpers import open_session

ODD_STATES = [
    "plain",
    "",
    "a b&c=d/e?f#g",
    "%41%00-literal-percent",
    "émoji 🙂 ✓ 中文",
    "<script>alert(1)</script>",
    "https://evil.example/?x=1",
    "=" * 512,
]


async def connect(
    client: httpx.AsyncClient, session: str, sandbox: SandboxServer
) -> httpx.Response:
    store, token = sandbox.new_store(), sandbox.new_token()
    body = {
        "store_url": sandbox.endpoint,
        "store_code": store.code,
        "api_key": token.access_token,
        "signing_key": token.signing_key,
    }
    response = await client.post(f"/v1/sessions/{session}/credentials", json=body)
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("state", ODD_STATES)
async def test_state_comes_back_unchanged(
    client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer, state: str
) -> None:
    session = await open_session(client, channel, state=state)
    connected = await connect(client, session, sandbox)
    location = (await client.get(f"/v1/sessions/{session}/redirect")).headers["location"]
    assert location == connected.json()["redirect_url"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://channel.example/return"
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["state"] == [state]
    assert query["src"] == ["miva"]
    assert query["merchant_id"] == [connected.json()["merchant_id"]]


@pytest.mark.parametrize(
    "target", ["https://evil.com", "//evil.com", "////evil.com", "/\\evil.com", "https:/evil.com"]
)
async def test_redirect_targets_in_the_request_are_ignored(
    client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer, target: str
) -> None:
    opened = await client.get(
        f"/connect/{channel.slug}",
        params={"state": "s", "return_to": target, "next": target, "redirect_url": target},
        headers={"Referer": target},
    )
    session = opened.headers["location"].rsplit("/", 1)[-1]
    await connect(client, session, sandbox)
    location = (
        await client.get(
            f"/v1/sessions/{session}/redirect",
            params={"return_to": target},
            headers={"Referer": target},
        )
    ).headers["location"]
    assert location.startswith("https://channel.example/return?")
