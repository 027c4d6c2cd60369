"""Repositories on a bare connection: Core statements run, ORM loads are refused."""

from __future__ import annotations

import pytest

from miva_connect.db.engine import Database
from miva_connect.db.repositories import MerchantRepository, SessionRepository


async def test_loading_merchants_on_a_connection_is_refused(database: Database) -> None:
    # select(Merchant) on a connection would return an id where a Merchant is expected.
    async with database.read() as connection:
        merchants = MerchantRepository(connection)
        with pytest.raises(TypeError, match="needs an AsyncSession"):
            await merchants.get_linked("m", "c")
        with pytest.raises(TypeError, match="needs an AsyncSession"):
            await merchants.needing_rotation("key", "", 10)


async def test_core_reads_on_a_connection(database: Database) -> None:
    async with database.read() as connection:
        sessions = SessionRepository(connection)
        assert await sessions.get_by_token_hash("0" * 64) is None
        assert await sessions.status("no-such-session") is None
