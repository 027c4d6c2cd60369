from __future__ import annotations

import asyncio

import httpx
import pytest
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

import miva_connect.app as app_module
from miva_connect.db.engine import create_engine as real_create_engine
from miva_connect.db.migrations import alembic_config, head_revision, upgrade
from miva_connect.settings import Settings
from tests import canaries
from tests.conftest import serve_app


class TestHealth:
    async def test_liveness(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_ready_when_database_schema_and_keys_are_fine(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/readyz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_not_ready_on_an_unmigrated_database(
        self, settings: Settings, fresh_database_url: str
    ) -> None:
        empty = settings.model_copy(update={"database_url": fresh_database_url})
        async with serve_app(empty) as http:
            response = await http.get("/readyz")
            assert response.status_code == 503
            head = head_revision(empty.database_url)
            assert response.json()["problems"] == [
                f"database schema is at nothing, expected {head}"
            ]
            assert (await http.get("/healthz")).status_code == 200

    async def test_not_ready_until_the_last_migration_ran(
        self, settings: Settings, fresh_database_url: str
    ) -> None:
        behind = settings.model_copy(update={"database_url": fresh_database_url})
        script = ScriptDirectory.from_config(alembic_config(fresh_database_url))
        head = head_revision(fresh_database_url)
        assert head is not None
        previous = script.get_revision(head).down_revision
        await asyncio.to_thread(upgrade, fresh_database_url, str(previous))
        async with serve_app(behind) as http:
            response = await http.get("/readyz")
            assert response.json()["problems"] == [
                f"database schema is at {previous}, expected {head}"
            ]
            await asyncio.to_thread(upgrade, fresh_database_url)
            assert (await http.get("/readyz")).status_code == 200

    async def test_not_ready_when_keys_cannot_open_stored_data(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        assert (await client.get("/readyz")).status_code == 200  # the check value exists
        other_keys = settings.model_copy(
            update={"encryption_keys": [_secret(canaries.fernet_key())]}
        )
        async with serve_app(other_keys) as http:
            response = await http.get("/readyz")
        assert response.status_code == 503
        assert "encryption keys cannot decrypt stored data" in response.json()["problems"][0]

    async def test_not_ready_when_the_database_is_unreachable(self, settings: Settings) -> None:
        gone = settings.model_copy(
            update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
        )
        async with serve_app(gone) as http:
            response = await http.get("/readyz")
            api = await http.get("/connect/any-channel", params={"state": "x"})
        assert response.status_code == 503
        assert response.json()["problems"][0].startswith("database unreachable")
        assert "127.0.0.1" not in response.text
        assert api.status_code == 503
        assert api.json()["error"]["code"] == "service_unavailable"


def _secret(value: str) -> object:
    from pydantic import SecretStr

    return SecretStr(value)


async def test_the_database_pool_is_sized_by_the_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engines: list[AsyncEngine] = []

    def create_engine(url: str, **options: int) -> AsyncEngine:
        assert options == {"pool_size": 3, "max_overflow": 1}
        engines.append(real_create_engine(url, **options))
        return engines[-1]

    monkeypatch.setattr(app_module, "create_engine", create_engine)
    sized = settings.model_copy(update={"db_pool_size": 3, "db_max_overflow": 1})
    async with serve_app(sized) as http:
        assert (await http.get("/readyz")).status_code == 200
        (engine,) = engines
        if engine.dialect.name == "postgresql":
            pool = engine.pool
            assert isinstance(pool, QueuePool)
            assert pool.size() == 3
    with pytest.raises(ValidationError):
        Settings(_env_file=None, db_pool_size=0)
