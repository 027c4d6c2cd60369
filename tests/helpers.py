"""Small helpers shared by API tests."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import httpx

from miva_connect.channels.service import RegisteredChannel
from tests import canaries


def channel_auth(channel: RegisteredChannel) -> httpx.BasicAuth:
    return httpx.BasicAuth(channel.id, channel.secret)


async def open_session(
    client: httpx.AsyncClient, channel: RegisteredChannel, state: str = "state-123"
) -> str:
    response = await client.post("/v1/sessions", json={"state": state}, auth=channel_auth(channel))
    assert response.status_code == 201, response.text
    return canaries.bearer(str(response.json()["id"]))


def closed_port() -> int:
    """A loopback port on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class StubResolver:
    """Answers from a table instead of DNS, and counts the lookups."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPv4Address | IPv6Address]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(answer) for answer in self.answers[host]]
