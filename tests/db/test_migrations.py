from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from miva_connect.db.base import Base
from miva_connect.db.engine import create_engine
from miva_connect.db.migrations import alembic_config, current_revision, head_revision


async def run(url: str, action: str, revision: str) -> None:
    await asyncio.to_thread(getattr(command, action), alembic_config(url), revision)


async def test_upgrade_downgrade_upgrade_is_clean(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await run(fresh_database_url, "upgrade", "head")
        assert await current_revision(engine) == head_revision(fresh_database_url)
        await run(fresh_database_url, "downgrade", "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await run(fresh_database_url, "upgrade", "head")
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert diff == [], "the models and the migrations disagree"
    finally:
        await engine.dispose()
