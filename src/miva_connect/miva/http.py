"""The HTTP client for calling stores: explicit timeouts, no redirects, nothing from the
environment (no proxy variables, no certificate overrides), and every connection through
the egress guard (`miva_connect.egress`): resolved once, checked, pinned.

Under the guard, the network is aiohttp's (through `httpx-aiohttp`) by default: with
hundreds of requests in flight, httpcore's pool spends most of its time on its own
bookkeeping (encode/httpx#3215, encode/httpcore#1035); `bench/RESULTS.md` has the numbers.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from miva_connect.egress import AddressPolicy, GuardedTransport, Resolver
from miva_connect.miva.errors import Redirected

CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0

NetworkKind = Literal["aiohttp", "httpcore"]


async def _stop_at_redirects(response: httpx.Response) -> None:
    # httpx parses a redirect's Location even when it will not follow it, and fails on
    # odd ones ("javascript:..."); answer before that, the same way for every Location.
    if response.is_redirect or 300 <= response.status_code < 400:
        raise Redirected(response.status_code, response.headers.get("Location"))


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    # httpx-aiohttp maps the common aiohttp errors; the rest (a malformed status line or
    # header, a header over aiohttp's size limits) would escape as aiohttp's own types.
    try:
        yield
    except aiohttp.ClientError as exc:
        raise httpx.RemoteProtocolError(type(exc).__name__) from exc


class _MappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _as_httpx_errors():
            await self._inner.aclose()


class AiohttpNetwork(AiohttpTransport):
    """`httpx_aiohttp.AiohttpTransport` that raises only httpx errors."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors():
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _MappedStream(response.stream)
        return response


def network_transport(
    kind: NetworkKind = "aiohttp",
    *,
    max_connections: int = 200,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncBaseTransport:
    """The transport that opens connections (to addresses the guard already checked)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
    if kind == "httpcore":
        return httpx.AsyncHTTPTransport(verify=verify, retries=0, trust_env=False, limits=limits)
    return AiohttpNetwork(verify=verify, trust_env=False, limits=limits)


def store_http_client(
    *,
    timeout: float,
    policy: AddressPolicy,
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    network: NetworkKind = "aiohttp",
    max_connections: int = 200,
) -> httpx.AsyncClient:
    """One shared client for every store; `timeout` bounds each read and write.

    `transport` (tests only) replaces the network under the guard, never the guard.
    """
    inner = transport or network_transport(network, max_connections=max_connections)
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver, inner=inner),
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, pool=POOL_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_stop_at_redirects]},
    )
