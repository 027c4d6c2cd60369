"""Abuse controls for the calls that reach out to stores, built on the `limits` library.

The service would otherwise be an oracle for testing stolen Miva tokens, and a way to aim
traffic at third parties. So every check that reaches a store first passes, in order:
per session, per client address, per target store host (moving windows; failures count
double), then one of a fixed number of outbound slots. Counters live in memory by
default, or in Redis (`MIVA_CONNECT_REDIS_URL`) so that every replica shares one budget;
the outbound slots are per process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from miva_connect.errors import AppError

OUTBOUND_BUSY_RETRY_SECONDS = 2
# Each budget's public name (as in its setting) by its key, which also prefixes its
# counters in Redis and so stays as it is.
_LIMIT_NAMES = {
    "session": "session",
    "client": "client",
    "store": "store_host",
    "open": "sessions_per_client",
}
OUTBOUND = "outbound"
REFUSING_LIMITS = (*_LIMIT_NAMES.values(), OUTBOUND)

log = structlog.get_logger(__name__)


class RateLimited(AppError):
    status_code = 429
    default_code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many attempts. Wait {retry_after} seconds, then try again.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


class LimiterUnavailable(AppError):
    status_code = 503
    default_code = "service_unavailable"


@dataclass(frozen=True)
class LimitsConfig:
    """Limits in the `limits` notation, e.g. "5 per 15 minutes"."""

    per_session: str = "5 per 15 minutes"
    per_client: str = "20 per hour"
    per_store_host: str = "10 per hour"
    sessions_per_client: str = "30 per hour"
    max_outbound: int = 20


KEY_PREFIX = "miva-connect"  # of every counter's key in Redis


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    return "async+" + redis_url if redis_url.startswith(("redis://", "rediss://")) else redis_url


def _storage(uri: str, key_prefix: str) -> AsyncStorage:
    # Wrapped storage errors let a Redis outage answer 503 rather than crash a request.
    options: dict[str, str | bool] = (
        {"key_prefix": key_prefix, "wrap_exceptions": True} if "redis" in uri else {}
    )
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, AsyncStorage):
        raise TypeError(f"not an async+ storage: {uri.split(':', 1)[0]}")
    return storage


async def storage_answers(uri: str) -> bool:
    """Whether the counters' storage answers a PING (memory always does)."""
    return bool(await _storage(uri, KEY_PREFIX).check())


def _ignore(_limit: str) -> None:
    pass


class RateLimiter:
    """`on_refused` is told the name of each limit that refuses (one of `REFUSING_LIMITS`)."""

    def __init__(
        self,
        config: LimitsConfig,
        uri: str,
        *,
        key_prefix: str = KEY_PREFIX,
        on_refused: Callable[[str], None] | None = None,
    ):
        self._storage = _storage(uri, key_prefix)
        self._windows = MovingWindowRateLimiter(self._storage)
        self._checks: dict[str, RateLimitItem] = {
            "session": parse(config.per_session),
            "client": parse(config.per_client),
            "store": parse(config.per_store_host),
            "open": parse(config.sessions_per_client),
        }
        self._outbound = asyncio.Semaphore(config.max_outbound)
        self._on_refused = on_refused or _ignore

    async def check_validation(self, *, session: str, client: str, store_host: str) -> None:
        """Count one validation attempt; raise `RateLimited` if any budget is spent."""
        await self._consume([("session", session), ("client", client), ("store", store_host)])

    async def record_failure(self, *, session: str, client: str) -> None:
        """A failed attempt costs one more from the session's and the client's budget."""
        try:
            for name, key in (("session", session), ("client", client)):
                await self._windows.hit(self._checks[name], name, key)
        except StorageError:
            log.error("ratelimit.storage_unavailable")

    async def check_session_opening(self, client: str) -> None:
        """Opening sessions without channel credentials (a channel's link) is limited too."""
        await self._consume([("open", client)])

    @asynccontextmanager
    async def outbound_slot(self) -> AsyncIterator[None]:
        """One of the process's outbound slots, or `RateLimited` at once when all are busy."""
        if self._outbound.locked():
            self._on_refused(OUTBOUND)
            raise RateLimited(OUTBOUND_BUSY_RETRY_SECONDS)
        async with self._outbound:
            yield

    async def _consume(self, keys: list[tuple[str, str]]) -> None:
        try:
            await self._consume_or_fail(keys)
        except StorageError:
            log.error("ratelimit.storage_unavailable")
            raise LimiterUnavailable(
                "The service is unavailable. Try again shortly.", code="service_unavailable"
            ) from None

    async def _consume_or_fail(self, keys: list[tuple[str, str]]) -> None:
        # `hit` checks and counts in one atomic step (a Lua script on Redis): a test-then-hit
        # pair would let a concurrent burst through every budget.
        for name, key in keys:
            if not await self._windows.hit(self._checks[name], name, key):
                self._on_refused(_LIMIT_NAMES[name])
                raise RateLimited(await self._retry_after(name, key))

    async def _retry_after(self, name: str, key: str) -> int:
        stats = await self._windows.get_window_stats(self._checks[name], name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
