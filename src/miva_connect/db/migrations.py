"""Alembic, driven from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

_REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(database_url: str) -> Config:
    """The project's Alembic config: next to the sources, else in the working directory."""
    for candidate in (_REPO_ROOT / "alembic.ini", Path.cwd() / "alembic.ini"):
        if candidate.is_file():
            config = Config(str(candidate))
            break
    else:
        raise FileNotFoundError("alembic.ini not found (run from the project directory)")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations (blocking: it runs its own event loop)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
