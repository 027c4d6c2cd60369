"""The database goes away under a running app, and comes back (real Postgres behind a
TCP proxy that the test cuts): clear 503s, nothing half-written, and recovery without
a restart (pooled connections found closed, or dead after idling, are replaced before
use)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

import miva_connect.db.engine as engine_module
from miva_connect.channels.service import RegisteredChannel
from miva_connect.db.engine import Database
from miva_connect.db.models import ChannelMerchant, Merchant, OnboardingSession
from miva_connect.settings import Settings
from miva_connect.tokens import token_hash
from tests.conftest import serve_app
from tests.db_proxy import TcpProxy, tcp_proxy
from tests.helpers import channel_auth, open_session
from tests.hostile_store import (
    Connection,
    Request,
    credentials,
    each_request,
    hostile_store,
    miva_reply,
)

# Only Postgres has a server to lose; the session's Postgres database, through a proxy.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

QUICK = 2.0  # seconds: a down database is reported at once, not after some timeout


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(database_url)
    async with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
async def proxied_client(
    settings: Settings, database_url: str, proxy: TcpProxy
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose every database connection goes through the proxy."""
    proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    update = {
        "database_url": proxied.render_as_string(hide_password=False),
        "miva_timeout_seconds": 2,
    }
    async with serve_app(settings.model_copy(update=update)) as http:
        yield http


def assert_service_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "The service is unavailable. Try again shortly.",
            "field": None,
        }
    }


async def timed(request: Any) -> httpx.Response:
    started = time.monotonic()
    response: httpx.Response = await request
    assert time.monotonic() - started < QUICK
    return response


async def session_row(database: Database, token: str) -> OnboardingSession:
    async with database.transaction() as tx:
        found = await tx.scalar(
            select(OnboardingSession).where(OnboardingSession.token_hash == token_hash(token))
        )
    assert found is not None
    return found


async def merchants_at(database: Database, store_url: str) -> list[Merchant]:
    async with database.transaction() as tx:
        return list(await tx.scalars(select(Merchant).where(Merchant.store_url == store_url)))


class TestDatabaseDown:
    async def test_readiness_and_api_say_503_then_recover_without_a_restart(
        self, proxied_client: httpx.AsyncClient, proxy: TcpProxy, channel: RegisteredChannel
    ) -> None:
        auth = channel_auth(channel)
        assert (await proxied_client.get("/readyz")).status_code == 200
        pending = await open_session(proxied_client, channel)  # pooled connections exist now

        proxy.cut()
        ready = await timed(proxied_client.get("/readyz"))
        assert ready.status_code == 503
        problems = ready.json()["problems"]
        assert len(problems) == 1
        assert problems[0].startswith("database unreachable")
        assert str(proxy.port) not in ready.text  # no DSN, no address
        assert (await timed(proxied_client.get("/healthz"))).status_code == 200
        assert_service_unavailable(
            await timed(proxied_client.post("/v1/sessions", json={}, auth=auth))
        )
        assert_service_unavailable(await timed(proxied_client.get(f"/v1/sessions/{pending}")))
        async with hostile_store(each_request(miva_reply)) as store:
            submitted = await timed(
                proxied_client.post(
                    f"/v1/sessions/{pending}/credentials", json=credentials(store.endpoint)
                )
            )
        assert_service_unavailable(submitted)
        assert store.requests == []  # the session could not be read: the store was never asked

        await proxy.restore()
        assert (await timed(proxied_client.get("/readyz"))).status_code == 200
        assert (await proxied_client.post("/v1/sessions", json={}, auth=auth)).status_code == 201
        async with hostile_store(each_request(miva_reply)) as store:
            connected = await proxied_client.post(
                f"/v1/sessions/{pending}/credentials", json=credentials(store.endpoint)
            )
        assert connected.status_code == 200, connected.text

    async def test_readiness_names_the_lost_connection_when_it_drops_mid_check(
        self, proxied_client: httpx.AsyncClient, proxy: TcpProxy
    ) -> None:
        proxy.cut_on(b"alembic_version")  # the first time: later, asyncpg sends no SQL text
        ready = await timed(proxied_client.get("/readyz"))
        assert ready.status_code == 503
        (problem,) = ready.json()["problems"]
        assert problem.startswith("database unreachable (")
        assert "PendingRollbackError" not in problem  # not the fallback's error on a dead line

    async def test_a_blip_that_drops_pooled_connections_goes_unnoticed(
        self, proxied_client: httpx.AsyncClient, proxy: TcpProxy, channel: RegisteredChannel
    ) -> None:
        """Pooled connections that were closed meanwhile are replaced before use."""
        auth = channel_auth(channel)
        for _ in range(3):
            token = await open_session(proxied_client, channel)  # a pooled connection
            proxy.cut()
            await proxy.restore()
            assert (await proxied_client.get("/readyz")).status_code == 200
            proxy.cut()
            await proxy.restore()
            created = await proxied_client.post("/v1/sessions", json={}, auth=auth)
            assert created.status_code == 201, created.text
            proxy.cut()
            await proxy.restore()
            assert (await proxied_client.get(f"/v1/sessions/{token}")).status_code == 200

    async def test_an_idle_connection_a_middlebox_forgot_is_replaced(
        self,
        proxied_client: httpx.AsyncClient,
        proxy: TcpProxy,
        channel: RegisteredChannel,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A NAT that forgot an idle flow answers the next packet with a reset; a pooled
        connection idle long enough is pinged before use, and replaced."""
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        auth = channel_auth(channel)
        for _ in range(3):
            token = await open_session(proxied_client, channel)
            proxy.forget()
            created = await proxied_client.post("/v1/sessions", json={}, auth=auth)
            assert created.status_code == 201, created.text
            proxy.forget()
            assert (await proxied_client.get(f"/v1/sessions/{token}")).status_code == 200
            proxy.forget()
            assert (await proxied_client.get("/readyz")).status_code == 200

    async def test_a_connection_in_use_is_not_pinged(
        self,
        proxied_client: httpx.AsyncClient,
        proxy: TcpProxy,
        channel: RegisteredChannel,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The other side of the trade: a connection back in use within the idle time is
        not pinged, so a flow forgotten that soon costs one request a 503 (then the pool
        is renewed)."""
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
        await open_session(proxied_client, channel)
        proxy.forget()
        assert_service_unavailable(
            await proxied_client.post("/v1/sessions", json={}, auth=channel_auth(channel))
        )
        assert (await proxied_client.get("/readyz")).status_code == 200

    @pytest.mark.parametrize(
        "cut",
        [
            pytest.param("while-the-store-answers", id="down-before-the-final-write"),
            pytest.param(b"INSERT INTO channel_merchant", id="down-at-its-last-statement"),
        ],
    )
    async def test_a_failed_final_write_leaves_nothing_half_written(
        self,
        proxied_client: httpx.AsyncClient,
        proxy: TcpProxy,
        channel: RegisteredChannel,
        database: Database,
        cut: str | bytes,
    ) -> None:
        """The store accepts the credentials; then the database goes away before (or in
        the middle of) the transaction that stores them and completes the session."""

        async def accept_then_lose_the_database(connection: Connection, request: Request) -> None:
            if request.is_multicall and cut == "while-the-store-answers" and not proxy.cuts:
                proxy.cut()
            await miva_reply(connection, request)

        token = await open_session(proxied_client, channel)
        if isinstance(cut, bytes):
            proxy.cut_on(cut)
        async with hostile_store(each_request(accept_then_lose_the_database)) as store:
            submitted = await timed(
                proxied_client.post(
                    f"/v1/sessions/{token}/credentials", json=credentials(store.endpoint)
                )
            )
            assert_service_unavailable(submitted)
            assert proxy.cuts == 1
            # Read directly, not through the proxy: nothing of the attempt was kept.
            assert await merchants_at(database, store.endpoint) == []
            session = await session_row(database, token)
            assert (session.status, session.merchant_id) == ("pending", None)
            async with database.transaction() as tx:
                links = await tx.scalars(
                    select(ChannelMerchant).where(ChannelMerchant.channel_id == channel.id)
                )
                assert list(links) == []

            await proxy.restore()
            retried = await proxied_client.post(
                f"/v1/sessions/{token}/credentials", json=credentials(store.endpoint)
            )
            assert retried.status_code == 200, retried.text
            merchants = await merchants_at(database, store.endpoint)
        assert [m.id for m in merchants] == [retried.json()["merchant_id"]]
        assert (await session_row(database, token)).status == "connected"
