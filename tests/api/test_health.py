from __future__ import annotations

import asyncio

import httpx
from alembic.script import ScriptDirectory

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
