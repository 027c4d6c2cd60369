"""The store client's round-trip observer: one report per request that left, with its
outcome class, taken when the answer's body is closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext

import httpx
import pytest

from miva_connect import miva
from miva_connect.egress import AddressPolicy
from miva_connect.miva import store_http_client
from tests.helpers import StubResolver

URL = "http://store.test/mm5/json.mvc"
Reports = list[tuple[str, float]]


class SlowBody(httpx.AsyncByteStream):
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"success":'
        if self.fail:
            raise httpx.ReadError("connection reset")
        yield b"1}"


def client(reports: Reports, handler: httpx.MockTransport) -> httpx.AsyncClient:
    return store_http_client(
        timeout=2,
        policy=AddressPolicy(allow_private=True),
        resolver=StubResolver({"store.test": ["127.0.0.1"]}),
        transport=handler,
        observe=lambda outcome, seconds: reports.append((outcome, seconds)),
    )


async def send(http: httpx.AsyncClient, url: str = URL) -> None:
    async with http:
        await miva.probe(http, url)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (lambda: httpx.Response(200, stream=SlowBody()), "2xx"),
        (lambda: httpx.Response(200, json={"success": 0}), "2xx"),  # read up front
        (lambda: httpx.Response(503, text="down"), "5xx"),
        (lambda: httpx.Response(302, headers={"Location": "https://elsewhere.test/"}), "3xx"),
        (lambda: httpx.Response(200, stream=SlowBody(fail=True)), "error"),
    ],
)
async def test_each_answer_is_reported_once(
    answer: Callable[[], httpx.Response], outcome: str
) -> None:
    reports: Reports = []
    handler = httpx.MockTransport(lambda _request: answer())
    fails: AbstractContextManager[object] = (
        pytest.raises(miva.MivaError) if outcome != "2xx" else nullcontext()
    )
    with fails:
        await send(client(reports, handler))
    assert [o for o, _ in reports] == [outcome]
    assert 0 <= reports[0][1] < 2


async def test_a_failed_connection_is_an_error() -> None:
    reports: Reports = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(miva.TransportError):
        await send(client(reports, httpx.MockTransport(refuse)))
    assert [o for o, _ in reports] == ["error"]


async def test_a_request_the_guard_refuses_never_left() -> None:
    reports: Reports = []
    network = httpx.MockTransport(lambda _request: httpx.Response(200))
    with pytest.raises(miva.BlockedDestination):
        await send(client(reports, network), "http://169.254.169.254/mm5/json.mvc")
    assert reports == []
