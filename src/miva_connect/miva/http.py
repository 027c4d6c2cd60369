"""The HTTP client for calling stores: explicit timeouts, no redirects, nothing from the
environment (no proxy variables, no certificate overrides), and every connection through
the egress guard (`miva_connect.egress`): resolved once, checked, pinned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx

from miva_connect.egress import AddressPolicy, DestinationRefused, GuardedTransport, Resolver
from miva_connect.miva.errors import Redirected

CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0

RoundTripObserver = Callable[[str, float], None]
"""Told of each request sent to a store: its outcome ("2xx" to "5xx", "other" or "error")
and its seconds, from sending to the end of the answer's body."""


async def _stop_at_redirects(response: httpx.Response) -> None:
    # httpx parses a redirect's Location even when it will not follow it, and fails on
    # odd ones ("javascript:..."); answer before that, the same way for every Location.
    if response.is_redirect or 300 <= response.status_code < 400:
        raise Redirected(response.status_code, response.headers.get("Location"))


def store_http_client(
    *,
    timeout: float,
    policy: AddressPolicy,
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 200,
    observe: RoundTripObserver | None = None,
) -> httpx.AsyncClient:
    """One shared client for every store; `timeout` bounds each read and write.

    `transport` (tests only) replaces the network under the guard, never the guard.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
    inner = transport or httpx.AsyncHTTPTransport(retries=0, trust_env=False, limits=limits)
    guarded: httpx.AsyncBaseTransport = GuardedTransport(policy, resolver=resolver, inner=inner)
    return httpx.AsyncClient(
        transport=TimedTransport(guarded, observe) if observe else guarded,
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, pool=POOL_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_stop_at_redirects]},
    )


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
