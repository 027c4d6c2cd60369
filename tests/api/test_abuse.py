"""Rate limits and the outbound cap, checked before any DNS lookup or request to a store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from miva_connect.sandbox import SandboxToken
from miva_connect.settings import Settings
from tests import canaries
from tests.conftest import RunningApp, SandboxServer, running_app
from tests.helpers import closed_port, open_session

GENEROUS = "100000 per hour"


def limited(settings: Settings, **limits: Any) -> Settings:
    defaults = {
        "rate_limit_per_session": GENEROUS,
        "rate_limit_per_client": GENEROUS,
        "rate_limit_per_store_host": GENEROUS,
        "rate_limit_sessions_per_client": GENEROUS,
    }
    return settings.model_copy(update={**defaults, **limits})


@pytest.fixture
async def app_factory(settings: Settings) -> AsyncIterator[Any]:
    async def build(**limits: Any) -> RunningApp:
        return await stack.enter_async_context(running_app(limited(settings, **limits)))

    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        yield build


def random_ip() -> str:
    return f"198.18.{secrets.randbelow(255)}.{secrets.randbelow(254) + 1}"


async def check_url(
    http: httpx.AsyncClient, channel: RegisteredChannel, url: str
) -> httpx.Response:
    session = await open_session(http, channel)
    return await http.post(f"/v1/sessions/{session}/store-url", json={"store_url": url})


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


class TestRateLimits:
    async def test_per_session(
        self, app_factory: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        http = await (await app_factory(rate_limit_per_session="3 per hour")).client(random_ip())
        session = await open_session(http, channel)
        url = f"/v1/sessions/{session}/store-url"
        for _ in range(3):
            assert (await http.post(url, json={"store_url": sandbox.endpoint})).status_code == 200
        before = len(sandbox.state.requests)
        assert_limited(await http.post(url, json={"store_url": sandbox.endpoint}))
        assert len(sandbox.state.requests) == before  # refused before any outbound request

    async def test_failures_count_double(
        self, app_factory: Any, channel: RegisteredChannel
    ) -> None:
        http = await (await app_factory(rate_limit_per_session="4 per hour")).client(random_ip())
        session = await open_session(http, channel)
        url, dead = f"/v1/sessions/{session}/store-url", f"http://127.0.0.1:{closed_port()}/mm5/"
        for _ in range(2):
            response = await http.post(url, json={"store_url": dead})
            assert response.json()["error"]["code"] == "store_unreachable"
        assert_limited(await http.post(url, json={"store_url": dead}))

    async def test_per_client_address(
        self, app_factory: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        app = await app_factory(rate_limit_per_client="2 per hour")
        first, other = await app.client(random_ip()), await app.client(random_ip())
        for _ in range(2):
            assert (await check_url(first, channel, sandbox.endpoint)).status_code == 200
        assert_limited(await check_url(first, channel, sandbox.endpoint))
        assert (await check_url(other, channel, sandbox.endpoint)).status_code == 200

    async def test_per_store_host(
        self, app_factory: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        app = await app_factory(rate_limit_per_store_host="2 per hour")
        for _ in range(2):
            response = await check_url(await app.client(random_ip()), channel, sandbox.endpoint)
            assert response.status_code == 200
        assert_limited(await check_url(await app.client(random_ip()), channel, sandbox.endpoint))
        other_host = sandbox.endpoint.replace("127.0.0.1", "localhost")
        response = await check_url(await app.client(random_ip()), channel, other_host)
        assert response.status_code == 200

    async def test_spoofed_forwarded_for_changes_nothing(
        self, app_factory: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        http = await (await app_factory(rate_limit_per_client="2 per hour")).client(random_ip())
        responses = []
        for n in range(1, 5):
            session = await open_session(http, channel)
            responses.append(
                await http.post(
                    f"/v1/sessions/{session}/store-url",
                    json={"store_url": sandbox.endpoint},
                    headers={"X-Forwarded-For": f"1.2.3.{n}"},
                )
            )
        assert [r.status_code for r in responses] == [200, 200, 429, 429]

    async def test_a_trusted_proxy_forwards_each_client_address(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        proxy = random_ip()
        tuned = limited(settings, rate_limit_per_client="1 per hour").model_copy(
            update={"trusted_proxies": [proxy]}
        )
        async with running_app(tuned) as app:
            http = await app.client(proxy)
            alice, bob = random_ip(), random_ip()

            async def submit(forwarded: str) -> int:
                session = await open_session(http, channel)
                response = await http.post(
                    f"/v1/sessions/{session}/store-url",
                    json={"store_url": sandbox.endpoint},
                    headers={"X-Forwarded-For": forwarded},
                )
                return response.status_code

            assert await submit(alice) == 200
            assert await submit(bob) == 200
            assert await submit(f"6.6.6.6, {alice}") == 429  # the spoofed left entry is ignored

    async def test_opening_sessions_from_a_channel_link(
        self, app_factory: Any, channel: RegisteredChannel
    ) -> None:
        http = await (await app_factory(rate_limit_sessions_per_client="2 per hour")).client(
            random_ip()
        )
        codes = [(await http.get(f"/connect/{channel.slug}")).status_code for _ in range(3)]
        assert codes == [303, 303, 429]

    async def test_limits_are_shared_through_redis(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        shared = limited(settings, rate_limit_per_client="2 per hour").model_copy(
            update={"redis_url": "redis://127.0.0.1:6379/0"}
        )
        peer = random_ip()
        async with running_app(shared) as one, running_app(shared) as two:
            assert (await check_url(await one.client(peer), channel, sandbox.endpoint)).is_success
            assert (await check_url(await two.client(peer), channel, sandbox.endpoint)).is_success
            assert_limited(await check_url(await one.client(peer), channel, sandbox.endpoint))

    async def test_limits_storage_down_is_503_not_a_crash(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        gone = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
        async with running_app(gone) as app:
            response = await check_url(await app.client(), channel, sandbox.endpoint)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"


class TestOutboundCap:
    async def test_a_full_cap_answers_429_at_once(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        capped = limited(settings).model_copy(update={"max_concurrent_validations": 1})
        store = sandbox.new_store()
        unknown = SandboxToken(canaries.api_key(), canaries.signing_key())  # slow: login delay
        sandbox.state.login_delay = 1.0
        try:
            async with running_app(capped) as app:
                http = await app.client(random_ip())
                sessions = [await open_session(http, channel) for _ in range(2)]
                body = {
                    "store_url": sandbox.endpoint,
                    "store_code": store.code,
                    "api_key": unknown.access_token,
                    "signing_key": unknown.signing_key,
                }
                slow = asyncio.create_task(
                    http.post(f"/v1/sessions/{sessions[0]}/credentials", json=body)
                )
                await asyncio.sleep(0.3)
                second = await http.post(f"/v1/sessions/{sessions[1]}/credentials", json=body)
                assert_limited(second)
                assert (await slow).json()["error"]["code"] == "access_denied"
        finally:
            sandbox.state.login_delay = 0.0


class TestReviewFindings:
    async def test_a_concurrent_burst_cannot_pass_a_shared_budget(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        shared = limited(settings, rate_limit_per_session="2 per hour").model_copy(
            update={"redis_url": "redis://127.0.0.1:6379/0"}
        )
        async with running_app(shared) as app:
            http = await app.client(random_ip())
            session = await open_session(http, channel)
            url = f"/v1/sessions/{session}/store-url"
            burst = await asyncio.gather(
                *(http.post(url, json={"store_url": sandbox.endpoint}) for _ in range(20))
            )
        assert sorted(r.status_code for r in burst) == [200, 200] + [429] * 18

    async def test_ipv6_clients_count_by_their_64(
        self, app_factory: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        app = await app_factory(rate_limit_per_client="2 per hour")
        prefix = f"2001:db8:{secrets.randbelow(65535):x}:{secrets.randbelow(65535):x}"
        codes = [
            (
                await check_url(await app.client(f"{prefix}::{n}"), channel, sandbox.endpoint)
            ).status_code
            for n in range(1, 5)
        ]
        assert codes == [200, 200, 429, 429]

    async def test_every_forwarded_for_line_is_read(
        self, settings: Settings, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        proxy, real = random_ip(), random_ip()
        tuned = limited(settings, rate_limit_per_client="2 per hour").model_copy(
            update={"trusted_proxies": [proxy]}
        )
        async with running_app(tuned) as app:
            http = await app.client(proxy)
            codes = []
            for n in range(4):
                session = await open_session(http, channel)
                response = await http.post(
                    f"/v1/sessions/{session}/store-url",
                    json={"store_url": sandbox.endpoint},
                    headers=[("X-Forwarded-For", f"1.2.3.{n}"), ("X-Forwarded-For", real)],
                )
                codes.append(response.status_code)
        assert codes == [200, 200, 429, 429]

    async def test_limits_are_spent_before_any_dns_lookup(
        self, settings: Settings, channel: RegisteredChannel
    ) -> None:
        from tests.helpers import StubResolver

        resolver = StubResolver({"shop.example": ["203.0.113.5"]})
        tuned = limited(settings, rate_limit_per_session="1 per hour")
        refuse = httpx.MockTransport(lambda _r: httpx.Response(503))
        async with running_app(tuned, miva_transport=refuse, miva_resolver=resolver) as app:
            http = await app.client(random_ip())
            session = await open_session(http, channel)
            url = f"/v1/sessions/{session}/store-url"
            await http.post(url, json={"store_url": "http://shop.example/mm5/"})
            looked_up = len(resolver.calls)
            assert_limited(await http.post(url, json={"store_url": "http://shop.example/mm5/"}))
        assert looked_up == 1
        assert len(resolver.calls) == 1
