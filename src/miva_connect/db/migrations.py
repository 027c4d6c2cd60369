"""Alembic, driven from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, column, select, table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
        return await connection.run_sync(revision_of)


def revision_of(connection: Connection) -> str | None:
    """The revision a database is at (blocking; None before the first migration)."""
    return MigrationContext.configure(connection).get_current_revision()


# Alembic's MigrationContext reflects the version table and builds a new statement on
# every call: half the CPU of a readiness probe. The probe reads the row itself and asks
# Alembic only when that is not the plain answer (no table yet, several heads).
_VERSION = select(table("alembic_version", column("version_num")).c.version_num)


async def schema_revision(connection: AsyncConnection) -> str | None:
    """The revision a database is at, read on `connection`; None before the first migration."""
    try:
        versions = (await connection.scalars(_VERSION)).all()
    except DBAPIError as error:
        if error.connection_invalidated:  # the database went away: say that, not what follows
            raise
        versions = []
    if len(versions) == 1:
        return str(versions[0])
    return await connection.run_sync(revision_of)
