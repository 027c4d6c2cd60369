"""The shared client for stores keeps nothing of one request for the next."""

from __future__ import annotations

import httpx
import pytest

from miva_connect.egress import AddressPolicy
from miva_connect.miva import store_http_client
from miva_connect.miva.http import NetworkKind
from tests.hostile_store import Connection, Request, each_request, hostile_store


async def sets_a_cookie(connection: Connection, request: Request) -> None:
    await connection.send_json(
        {"success": 1}, headers={"Set-Cookie": "session=merchant-a; Path=/; Max-Age=3600"}
    )


@pytest.mark.parametrize("network", ["aiohttp", "httpcore"])
async def test_a_cookie_a_store_sets_is_never_sent_back(network: NetworkKind) -> None:
    """One client serves every merchant: a store's cookie must not ride along with the
    next merchant's request."""
    async with (
        hostile_store(each_request(sets_a_cookie)) as store,
        store_http_client(
            timeout=2, policy=AddressPolicy(allow_private=True), network=network
        ) as http,
    ):
        for _ in range(2):
            answer = await http.post(store.endpoint, content=b"{}")
            assert answer.headers["Set-Cookie"].startswith("session=")
        assert len(http.cookies) == 0
    assert [request.headers.get("cookie") for request in store.requests] == [None, None]


async def test_the_client_refuses_cookies_set_on_it() -> None:
    http = store_http_client(timeout=2, policy=AddressPolicy(allow_private=True))
    with pytest.raises(AttributeError):
        http.cookies = httpx.Cookies({"session": "merchant-a"})
    await http.aclose()
