"""The load generator: opens sessions and submits credentials to the service over HTTP."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from miva_connect.sandbox import DEMO_SIGNING_KEY, DEMO_TOKEN_GOOD


@dataclass(frozen=True)
class Channel:
    id: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    seconds: float
    ok: bool


class Load:
    """One aiohttp session to the service, without a connection limit."""

    def __init__(self, base_url: str, channel: Channel) -> None:
        self._base = base_url
        self._auth = aiohttp.BasicAuth(channel.id, channel.secret)
        self._http = aiohttp.ClientSession(
            # Idle connections close on our side first: uvicorn drops them after 5 s, and a
            # request sent on a connection it is dropping fails without an answer.
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=2),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    async def __aenter__(self) -> Load:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.close()

    async def open_sessions(self, count: int, concurrency: int = 16) -> list[str]:
        """`count` new onboarding sessions (not timed)."""
        gate = asyncio.Semaphore(concurrency)

        async def one() -> str:
            async with (
                gate,
                self._http.post(
                    f"{self._base}/v1/sessions", json={"state": "bench"}, auth=self._auth
                ) as reply,
            ):
                reply.raise_for_status()
                return str((await reply.json())["id"])

        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def validate(self, session: str, store_url: str, store_code: str) -> Outcome:
        """One full validation: the credentials POST, timed from send to the whole reply."""
        body = {
            "store_url": store_url,
            "store_code": store_code,
            "api_key": DEMO_TOKEN_GOOD,
            "signing_key": DEMO_SIGNING_KEY,
        }
        started = time.perf_counter()
        try:
            async with self._http.post(
                f"{self._base}/v1/sessions/{session}/credentials", json=body
            ) as reply:
                payload = await reply.json()
                ok = reply.status == 200 and payload.get("status") == "connected"
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ok = False
        return Outcome(time.perf_counter() - started, ok)
