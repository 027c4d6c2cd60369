"""Engine and short transactions. Services open one `transaction()` per unit of work
(or one `read()` for queries that change nothing), so no connection is held while we
wait on a merchant's store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_SECONDS = 30
# A pooled Postgres connection idle this long is pinged before use (see below).
PING_AFTER_IDLE_SECONDS = 10.0
_COUNTED = "miva_connect.checked_out"
_IDLE_SINCE = "miva_connect.idle_since"


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 10) -> AsyncEngine:
    """An async engine for Postgres (asyncpg) or SQLite (aiosqlite).

    Parameters are hidden from SQL errors: they hold hashes, ciphertexts and `state`.
    Postgres keeps up to `pool_size` idle connections: a connection opened beyond them
    (up to `max_overflow` more) is closed when given back, and reopening costs more than
    the queries it serves.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        _serialise_sqlite_writes(engine)
        _keep_sqlite_connections_on_cancel(engine)
        return engine
    engine = create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )
    _replace_dead_connections(engine)
    return engine


def _replace_dead_connections(engine: AsyncEngine) -> None:
    # A pooled connection is replaced before use when the server closed it (a restart)
    # or, after it sat idle, when it no longer answers a ping: a NAT or load balancer may
    # forget an idle flow without closing it, and only a packet finds out. pool_pre_ping
    # would ping at every checkout, but on asyncpg each ping is three round trips (BEGIN,
    # ";", ROLLBACK) and a third of a millisecond of CPU; under load a connection is back
    # in use within milliseconds, far below any middlebox's idle timeout.
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("connection closed by the server")  # the pool retries
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since >= PING_AFTER_IDLE_SECONDS:
            try:
                dialect.do_ping(dbapi)
            except Exception as error:
                raise DisconnectionError("connection lost while idle") from error


def _serialise_sqlite_writes(engine: AsyncEngine) -> None:
    # pysqlite's deferred BEGIN lets two transactions read, then both fail to upgrade to
    # a write lock (SQLITE_BUSY, no retry). BEGIN IMMEDIATE takes the lock up front and
    # waits for it, so concurrent submits queue instead of failing.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _keep_sqlite_connections_on_cancel(engine: AsyncEngine) -> None:
    # SQLAlchemy takes a cancellation mid-statement for a disconnect and closes the
    # connection at once. aiosqlite finishes the statement in its thread anyway, so the
    # close leaves it unfinalized: SQLite keeps the connection as a zombie that holds the
    # BEGIN IMMEDIATE lock, and every later write waits out the busy timeout ("database
    # is locked"). Treated as an ordinary error instead, the cursor is closed and the
    # transaction rolled back as usual (the task still ends cancelled).
    @event.listens_for(engine.sync_engine, "handle_error")
    def _cancelled(context: ExceptionContext) -> None:
        if isinstance(context.original_exception, asyncio.CancelledError):
            context.is_disconnect = False


def watch_checkouts(engine: AsyncEngine, changed: Callable[[int], None]) -> None:
    """Tell `changed` +1 when a connection leaves the pool and -1 when it is back.

    Counting events, rather than asking the pool at scrape time, also works when several
    worker processes add up their counts (a scrape reaches one process only).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        info = record.record_info  # kept when the connection is invalidated, unlike `info`
        if info is not None:
            info[_COUNTED] = True
            changed(1)

    # The pool also checks in a connection whose connect or pre-ping failed, which never
    # had its checkout event: only connections counted out are counted back.
    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        if (record.record_info or {}).pop(_COUNTED, False):
            changed(-1)


class Database:
    """The engine plus a session factory; the unit of work is `transaction()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Reads need no BEGIN and COMMIT around them (two round trips on Postgres). SQLite
        # keeps transactions: its BEGIN IMMEDIATE hook serialises every access.
        self._reader = engine
        if engine.dialect.name == "postgresql":
            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, for Core statements only: lighter than a session."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for Core queries that change nothing: no transaction around them."""
        async with self._reader.begin() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()
