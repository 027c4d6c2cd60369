"""The HTTP client for calling stores: explicit timeouts, no redirects, nothing from the
environment (no proxy variables, no certificate overrides), and every connection through
the egress guard (`miva_connect.egress`): resolved once, checked, pinned.

Under the guard, the network is aiohttp's (through `httpx-aiohttp`) by default: with
hundreds of requests in flight, httpcore's pool spends most of its time on its own
bookkeeping (encode/httpx#3215, encode/httpcore#1035); `bench/RESULTS.md` has the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from miva_connect.egress import AddressPolicy, DestinationRefused, GuardedTransport, Resolver
from miva_connect.miva.errors import Redirected

CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0

NetworkKind = Literal["aiohttp", "httpcore"]
RoundTripObserver = Callable[[str, float], None]
"""Told of each request sent to a store: its outcome ("2xx" to "5xx", "other" or "error")
and its seconds, from sending to the end of the answer's body."""


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
    observe: RoundTripObserver | None = None,
) -> httpx.AsyncClient:
    """One shared client for every store; `timeout` bounds each read and write.

    `transport` (tests only) replaces the network under the guard, never the guard.
    """
    inner = transport or network_transport(network, max_connections=max_connections)
    guarded: httpx.AsyncBaseTransport = GuardedTransport(policy, resolver=resolver, inner=inner)
    return StoreClient(
        transport=TimedTransport(guarded, observe) if observe else guarded,
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, pool=POOL_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_stop_at_redirects]},
    )


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class StoreClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies.

    One client serves every merchant: a cookie that one store sets must not ride along
    with the next merchant's request to the same host. (Skipping the cookie jar also
    saves httpx's urllib-compatible request and response copies on every answer.)
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, _cookies: object) -> None:
        raise AttributeError("the store client keeps no cookies")


class TimedTransport(httpx.AsyncBaseTransport):
    """Times each request that reaches a store, until its answer's body is closed.

    Requests the guard refuses never leave, so they are not round trips.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, observe: RoundTripObserver) -> None:
        self._inner = inner
        self._observe = observe

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except DestinationRefused:
            raise
        except (Exception, asyncio.CancelledError):  # cancelled: the deadline cut it short
            self._observe("error", time.perf_counter() - started)
            raise
        outcome = _status_class(response.status_code)
        if response.is_closed:  # already read (a test transport's `content=`)
            self._observe(outcome, time.perf_counter() - started)
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _TimedStream(response.stream, started, outcome, self._observe)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TimedStream(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream, started: float, outcome: str, observe: RoundTripObserver
    ) -> None:
        self._inner = inner
        self._started = started
        self._outcome = outcome
        self._observe: RoundTripObserver | None = observe

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (Exception, asyncio.CancelledError):
            self._outcome = "error"
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._observe is not None:
                self._observe(self._outcome, time.perf_counter() - self._started)
                self._observe = None


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"
