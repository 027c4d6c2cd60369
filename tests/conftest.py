"""Shared fixtures: real databases (Postgres and SQLite), the sandbox store over HTTP,
the app with its lifespan, channels, and the canary watch over logs and responses."""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from miva_connect.app import create_app
from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import upgrade
from miva_connect.logs import configure_logging
from miva_connect.sandbox import Sandbox, SandboxStore, SandboxToken, serve_in_thread
from miva_connect.settings import Settings
from tests import canaries

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
EGRESS_IPS = ["198.51.100.7", "198.51.100.8"]


# -- canary watch -------------------------------------------------------------------------


class CanaryHandler(logging.Handler):
    """Sees every log record, formatted and raw, and remembers any that holds a secret."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        text = " ".join(
            [record.getMessage(), repr(record.args), repr(record.__dict__.get("msg"))]
            + [h.format(record) for h in logging.getLogger().handlers if h is not self]
        )
        for canary in canaries.found_in(text):
            self.leaks.append(f"{record.name}: {canary[:12]}...")
        # What the service's own log output shows: session tokens must be masked there.
        written = " ".join(
            h.format(record) for h in logging.getLogger().handlers if h.get_name() == "miva-connect"
        )
        for token in canaries.bearer_found_in(written):
            self.leaks.append(f"{record.name}: session token {token[:6]}...")


@pytest.fixture(scope="session", autouse=True)
def canary_watch() -> Iterator[CanaryHandler]:
    # Configure first: a structlog logger used before configuration stays bound to stdout.
    configure_logging("DEBUG", "json")
    handler = CanaryHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    assert not handler.leaks, f"secrets leaked into logs: {handler.leaks}"


async def _check_response(response: httpx.Response) -> None:
    await response.aread()
    leaked = canaries.found_in(response.text + str(response.headers))
    assert not leaked, f"a response contained a secret ({response.request.url.path})"


# -- databases ----------------------------------------------------------------------------


def _postgres_server_url() -> str:
    return os.environ.get("MIVA_CONNECT_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


async def _create_postgres_database() -> str:
    server = make_url(_postgres_server_url()).set(drivername="postgresql+asyncpg")
    name = f"miva_connect_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.exit(
            f"No Postgres answers at {server.render_as_string(hide_password=True)} ({error}). "
            "Start one (Debian: `pg_ctlcluster $(ls /etc/postgresql) main start`), or set "
            "MIVA_CONNECT_TEST_DATABASE_URL to a server where the user may create databases.",
            returncode=3,
        )
    finally:
        await engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    server = make_url(_postgres_server_url()).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def _assert_no_plaintext(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as connection:
        for table in ("merchant", "onboarding_session", "channel"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            leaked = canaries.found_in(repr(rows)) + canaries.bearer_found_in(repr(rows))
            assert not leaked, f"plaintext secret stored in table {table}"
    await engine.dispose()


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, migrated database on each backend; dropped after the run."""
    if request.param == "postgres":
        url = await _create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'miva-connect.db'}"
    try:
        await _upgrade(url)
        yield url
        await _assert_no_plaintext(url)
    finally:
        if request.param == "postgres":
            await _drop_postgres_database(url)


@pytest.fixture(params=["postgres", "sqlite"])
async def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own, for tests that need the whole database to themselves."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


async def _upgrade(url: str) -> None:
    import asyncio

    await asyncio.to_thread(upgrade, url)


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(create_engine(database_url))
    yield db
    await db.dispose()


# -- the sandbox store --------------------------------------------------------------------


@dataclass
class SandboxServer:
    state: Sandbox
    base_url: str

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/mm5/json.mvc"

    def new_store(self, name: str = "Test Store") -> SandboxStore:
        return self.state.add_store(
            SandboxStore(code=f"S{secrets.token_hex(4).upper()}", name=name)
        )

    def new_token(self, **options: Any) -> SandboxToken:
        """A token with canary secrets (defaults: all groups, signature required)."""
        options.setdefault("signing_key", canaries.signing_key())
        return self.state.add_token(SandboxToken(access_token=canaries.api_key(), **options))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox store on loopback for the whole run; tests add their own tokens."""
    state = Sandbox()
    with serve_in_thread(state) as base_url:
        yield SandboxServer(state, base_url)


# -- the app ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        encryption_keys=[canaries.fernet_key()],
        allow_private_networks=True,
        egress_ips=EGRESS_IPS,
        public_url="http://testserver",
        miva_timeout_seconds=5,
        # The suite calls from one address; the limits have their own tests.
        rate_limit_per_session="100000 per hour",
        rate_limit_per_client="100000 per hour",
        rate_limit_per_store_host="100000 per hour",
        rate_limit_sessions_per_client="100000 per hour",
        max_concurrent_validations=1000,
        log_level="DEBUG",
        log_format="json",
        # Every test's requests go through the metrics middleware too.
        metrics="on",
    )


@dataclass
class RunningApp:
    """An app with its lifespan started; `client(peer)` talks to it from a socket address."""

    asgi: Any
    exit_stack: AsyncExitStack

    async def client(self, peer: str = "127.0.0.1") -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.asgi, client=(peer, 50000)),
            base_url="http://testserver",
            event_hooks={"response": [_check_response]},
        )
        return await self.exit_stack.enter_async_context(http)


@asynccontextmanager
async def running_app(settings: Settings, **options: Any) -> AsyncIterator[RunningApp]:
    app = create_app(settings, **options)
    async with app.router.lifespan_context(app) as state, AsyncExitStack() as stack:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        yield RunningApp(with_state, stack)


@asynccontextmanager
async def serve_app(settings: Settings, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app, lifespan started, behind an async client that checks every response."""
    async with running_app(settings, **options) as running:
        yield await running.client()


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as http:
        yield http


@pytest.fixture
async def short_deadline_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings.model_copy(update={"miva_timeout_seconds": 0.5})) as http:
        yield http


@pytest.fixture
async def channel(database: Database) -> RegisteredChannel:
    registered = await ChannelService(database).register(
        "Test Channel",
        "https://channel.example/return?src=miva",
        slug=f"test-{secrets.token_hex(6)}",
    )
    canaries.register(registered.secret)
    return registered
