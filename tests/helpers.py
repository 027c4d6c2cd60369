"""Small helpers shared by API tests."""

from __future__ import annotations

import httpx

from miva_connect.channels.service import RegisteredChannel


def channel_auth(channel: RegisteredChannel) -> httpx.BasicAuth:
    return httpx.BasicAuth(channel.id, channel.secret)


async def open_session(
    client: httpx.AsyncClient, channel: RegisteredChannel, state: str = "state-123"
) -> str:
    response = await client.post("/v1/sessions", json={"state": state}, auth=channel_auth(channel))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def closed_port() -> int:
    """A loopback port on which nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
