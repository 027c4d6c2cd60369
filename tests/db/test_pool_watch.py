"""`watch_checkouts`: the count behind the connections-in-use gauge."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from miva_connect.db.engine import create_engine, watch_checkouts
from tests.helpers import closed_port


async def test_counts_connections_out_and_back(database_url: str) -> None:
    engine = create_engine(database_url)
    changes: list[int] = []
    watch_checkouts(engine, changes.append)
    try:
        async with engine.connect() as first, engine.connect():
            await first.execute(text("SELECT 1"))  # one at a time: SQLite begins IMMEDIATE
            assert sum(changes) == 2
        assert sum(changes) == 0
        async with engine.connect() as again:
            await again.invalidate()  # a connection dropped in use is still counted back
        assert changes == [1, 1, -1, -1, 1, -1]
    finally:
        await engine.dispose()


async def test_a_failed_connect_counts_nothing() -> None:
    # The pool checks in a connection whose connect failed without a checkout event.
    engine = create_engine(f"postgresql+asyncpg://u@127.0.0.1:{closed_port()}/nothing")
    changes: list[int] = []
    watch_checkouts(engine, changes.append)
    with pytest.raises(ConnectionRefusedError):
        async with engine.connect():
            pass
    await engine.dispose()
    assert changes == []
