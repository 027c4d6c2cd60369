from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from miva_connect.db.base import Base
from miva_connect.db.engine import create_engine
from miva_connect.db.migrations import alembic_config, current_revision, head_revision
from tests.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture(params=["postgres", "sqlite"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


async def run(url: str, action: str, revision: str) -> None:
    await asyncio.to_thread(getattr(command, action), alembic_config(url), revision)


async def test_upgrade_downgrade_upgrade_is_clean(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        await run(empty_database, "upgrade", "head")
        assert await current_revision(engine) == head_revision(empty_database)
        await run(empty_database, "downgrade", "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await run(empty_database, "upgrade", "head")
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == [], "the models and the migrations disagree"
    finally:
        await engine.dispose()
