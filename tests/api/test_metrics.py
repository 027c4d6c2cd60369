"""`/metrics`: what each counter counts, the labels it may carry, and who may scrape."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from miva_connect.channels.service import RegisteredChannel
from miva_connect.metrics import Metrics
from miva_connect.ratelimit import REFUSING_LIMITS
from miva_connect.sandbox import SandboxToken
from miva_connect.settings import Settings
from tests import canaries
from tests.conftest import SandboxServer, running_app
from tests.helpers import closed_port, open_session

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SCRAPER_TOKEN = canaries.register("scraper-" + "0123456789abcdef" * 3)
REQUESTS = "miva_connect_http_requests_total"
VALIDATIONS = "miva_connect_validations_total"
REFUSED = "miva_connect_rate_limited_total"
STORE_SECONDS = "miva_connect_store_request_duration_seconds"
Build = Callable[..., Awaitable[httpx.AsyncClient]]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def store_requests_timed(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == f"{STORE_SECONDS}_count")


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


@pytest.fixture
async def build(settings: Settings) -> AsyncIterator[Build]:
    """An app of its own (fresh counters) with metrics on and `overrides` applied."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            changed = settings.model_copy(update={"metrics": "on", **overrides})
            return await (await stack.enter_async_context(running_app(changed))).client()

        yield make


@pytest.fixture
async def http(build: Build) -> httpx.AsyncClient:
    return await build()


async def checked_session(
    http: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
) -> str:
    session = await open_session(http, channel)
    response = await http.post(
        f"/v1/sessions/{session}/store-url", json={"store_url": sandbox.endpoint}
    )
    assert response.status_code == 200, response.text
    return session


async def submit(http: httpx.AsyncClient, session: str, **body: str) -> httpx.Response:
    return await http.post(f"/v1/sessions/{session}/credentials", json=body)


def credentials(store_code: str, token: SandboxToken) -> dict[str, str]:
    return {
        "store_code": store_code,
        "api_key": token.access_token,
        "signing_key": token.signing_key,
    }


class TestRequests:
    async def test_routes_are_labelled_by_template_never_by_path(
        self, http: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(http, channel)
        assert (await http.get(f"/v1/sessions/{session}")).status_code == 200
        assert (await http.get(f"/connect/sessions/{session}")).status_code == 200
        assert (await http.get("/no/such/page/secret-ish")).status_code == 404
        text = (await http.get("/metrics")).text
        assert session not in text
        assert "secret-ish" not in text
        samples = parse(text)
        assert value(samples, REQUESTS, route="/v1/sessions", method="POST", status="201") == 1
        assert value(samples, REQUESTS, route="/v1/sessions/{id}", method="GET", status="200") == 1
        page = "/connect/sessions/{token}"
        assert value(samples, REQUESTS, route=page, method="GET", status="200") == 1
        assert value(samples, REQUESTS, route="unmatched", method="GET", status="404") == 1
        durations = "miva_connect_http_request_duration_seconds_count"
        assert value(samples, durations, route="/v1/sessions/{id}") == 1

    async def test_odd_methods_and_foreign_hosts_stay_bounded(
        self, http: httpx.AsyncClient
    ) -> None:
        assert (await http.request("BREW", "/healthz")).status_code == 405
        assert (await http.get("/healthz", headers={"Host": "evil.example"})).status_code == 200
        assert (await http.get("/readyz", headers={"Host": "evil.example"})).status_code == 200
        refused = await http.get("/v1/sessions/x", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        samples = await scrape(http)
        assert value(samples, REQUESTS, route="/healthz", method="other", status="405") == 1
        assert value(samples, REQUESTS, route="/healthz", method="GET", status="200") == 1
        assert value(samples, REQUESTS, route="unmatched", method="GET", status="400") == 1

    async def test_database_connections_are_all_back_after_requests(
        self,
        build: Build,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        changes: list[int] = []
        count = Metrics.db_connections_changed

        def spy(self: Metrics, delta: int) -> None:
            changes.append(delta)
            count(self, delta)

        monkeypatch.setattr(Metrics, "db_connections_changed", spy)
        http = await build()
        session = await checked_session(http, channel, sandbox)
        assert (await http.get(f"/v1/sessions/{session}")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        samples = await scrape(http)
        assert value(samples, "miva_connect_db_connections_in_use") == 0
        assert changes.count(1) >= 3  # connections did leave the pool, and all came back
        assert sum(changes) == 0


class TestValidations:
    async def test_a_connection_counts_ok_and_times_every_store_request(
        self, http: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        store, token = sandbox.new_store(), sandbox.new_token()
        before = len(sandbox.state.requests)
        session = await checked_session(http, channel, sandbox)
        response = await submit(http, session, **credentials(store.code, token))
        assert response.status_code == 200, response.text
        sent = len(sandbox.state.requests) - before
        samples = await scrape(http)
        assert value(samples, VALIDATIONS, step="store_url", code="ok") == 1
        assert value(samples, VALIDATIONS, step="credentials", code="ok") == 1
        assert sent >= 3  # the probe, the signed multicall, the unsigned Store_Load
        assert store_requests_timed(samples) == sent
        assert value(samples, f"{STORE_SECONDS}_count", outcome="2xx") == sent

    async def test_a_rejection_counts_the_code_the_merchant_was_given(
        self, http: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        store, token = sandbox.new_store(), sandbox.new_token()
        wrong = base64.b64encode(b"CANARY-WRONG-" + bytes(19)).decode()
        canaries.register(wrong)
        session = await checked_session(http, channel, sandbox)
        response = await submit(
            http, session, **{**credentials(store.code, token), "signing_key": wrong}
        )
        assert response.json()["error"]["code"] == "invalid_signature"
        response = await submit(
            http, session, **{**credentials(store.code, token), "signing_key": "not base64!"}
        )
        assert response.json()["error"]["code"] == "invalid_signing_key"
        samples = await scrape(http)
        assert value(samples, VALIDATIONS, step="credentials", code="invalid_signature") == 1
        assert value(samples, VALIDATIONS, step="credentials", code="invalid_signing_key") == 1
        assert value(samples, VALIDATIONS, step="credentials", code="ok") == 0

    async def test_an_unreachable_store_is_an_error_round_trip(
        self, http: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(http, channel)
        dead = f"http://127.0.0.1:{closed_port()}/mm5/json.mvc"
        response = await http.post(f"/v1/sessions/{session}/store-url", json={"store_url": dead})
        assert response.json()["error"]["code"] == "store_unreachable"
        samples = await scrape(http)
        assert value(samples, VALIDATIONS, step="store_url", code="store_unreachable") == 1
        assert value(samples, f"{STORE_SECONDS}_count", outcome="error") == 1
        assert store_requests_timed(samples) == 1

    async def test_no_secret_reaches_the_metrics(
        self, http: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        store, token = sandbox.new_store(), sandbox.new_token()
        session = await checked_session(http, channel, sandbox)
        unknown = SandboxToken(canaries.api_key(), canaries.signing_key())
        rejected = await submit(http, session, **credentials(store.code, unknown))
        assert rejected.status_code == 422
        connected = await submit(http, session, **credentials(store.code, token))
        assert connected.status_code == 200
        text = (await http.get("/metrics")).text
        assert VALIDATIONS in text
        assert canaries.found_in(text) == []
        assert canaries.bearer_found_in(text) == []
        assert store.code not in text
        assert sandbox.base_url.split("//")[1] not in text  # no store host either


class TestRateLimits:
    async def test_a_refusal_counts_the_limit_that_refused(
        self, build: Build, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        http = await build(rate_limit_per_session="1 per hour")
        session = await checked_session(http, channel, sandbox)
        again = await http.post(
            f"/v1/sessions/{session}/store-url", json={"store_url": sandbox.endpoint}
        )
        assert again.status_code == 429
        samples = await scrape(http)
        assert value(samples, REFUSED, limit="session") == 1
        for other in set(REFUSING_LIMITS) - {"session"}:
            assert (REFUSED, frozenset({("limit", other)})) in samples  # present from the start
            assert value(samples, REFUSED, limit=other) == 0
        assert value(samples, VALIDATIONS, step="store_url", code="rate_limited") == 1

    async def test_channel_links_count_as_sessions_per_client(
        self, build: Build, channel: RegisteredChannel
    ) -> None:
        http = await build(rate_limit_sessions_per_client="1 per hour")
        assert (await http.get(f"/connect/{channel.slug}?state=a")).status_code == 303
        assert (await http.get(f"/connect/{channel.slug}?state=b")).status_code == 429
        samples = await scrape(http)
        assert value(samples, REFUSED, limit="sessions_per_client") == 1
        # Scraping is not limited: the same client still scrapes as often as it likes.
        for _ in range(5):
            await scrape(http)


class TestAccess:
    async def test_off_by_default_and_not_served(self, build: Build) -> None:
        http = await build(metrics="off")
        response = await http.get("/metrics")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert Settings(_env_file=None).metrics == "off"

    async def test_on_is_open_to_any_host(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/metrics", headers={"Host": "10.0.0.7:8000"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert "miva_connect_http_requests_total" in response.text

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer wrong", f"Basic {SCRAPER_TOKEN}", f"Bearer {SCRAPER_TOKEN}x", "Bearer"],
    )
    async def test_a_token_refuses_everyone_else(
        self, build: Build, authorization: str | None
    ) -> None:
        http = await build(metrics_token=SecretStr(SCRAPER_TOKEN))
        headers = {"Authorization": authorization} if authorization else {}
        response = await http.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'

    async def test_a_token_lets_its_holder_in(self, build: Build) -> None:
        http = await build(metrics_token=SecretStr(SCRAPER_TOKEN))
        assert (await http.get("/metrics")).status_code == 401
        samples = await scrape(http, Authorization=f"bearer {SCRAPER_TOKEN}")
        assert value(samples, REQUESTS, route="/metrics", method="GET", status="401") == 1
