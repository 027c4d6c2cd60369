"""Loading configuration with readable errors, serving the API, registering channels."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from pydantic import AnyHttpUrl, ValidationError

from miva_connect.app import build_cipher, create_app
from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.crypto import EncryptionKeyError
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import current_revision, head_revision
from miva_connect.keyring import RotationReport, rotate_credentials
from miva_connect.settings import Settings


class ConfigurationError(Exception):
    """Configuration that the service refuses; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(
            [_problem(item["loc"], item["msg"]) for item in error.errors(include_input=False)]
        ) from None


def _problem(location: tuple[int | str, ...], text: str) -> str:
    text = text.removeprefix("Value error, ")
    return f"MIVA_CONNECT_{str(location[0]).upper()}: {text}" if location else text


def check_startup(settings: Settings) -> None:
    """Refuse to start without a usable key ring."""
    if not settings.encryption_keys:
        raise ConfigurationError(
            [
                "MIVA_CONNECT_ENCRYPTION_KEYS is not set: add a key made with "
                "`miva-connect keys generate` (newest first, comma-separated)"
            ]
        )
    try:
        build_cipher(settings)
    except EncryptionKeyError as error:
        raise ConfigurationError([f"MIVA_CONNECT_ENCRYPTION_KEYS: {error}"]) from None


@asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, refused with a clear line unless its schema is at head."""
    db = Database(create_engine(settings.database_url))
    try:
        if await current_revision(db.engine) != head_revision(settings.database_url):
            raise ConfigurationError(
                ["the database schema is not up to date: run `miva-connect db upgrade`"]
            )
        yield db
    finally:
        await db.dispose()


def uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    # log_config=None keeps our redacting log setup; no Server header; client addresses
    # come from the socket, and X-Forwarded-For is read only from MIVA_CONNECT_TRUSTED_PROXIES.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


def serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    check_startup(settings)
    if "public_url" not in settings.model_fields_set:
        # Links must point where we listen unless a public URL was configured.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
        url = AnyHttpUrl(f"http://{host}:{args.port}")
        settings = settings.model_copy(update={"public_url": url})
    uvicorn.Server(uvicorn_config(create_app(settings), args.host, args.port)).run()
    return 0


async def rotate_keys(settings: Settings) -> RotationReport:
    check_startup(settings)
    async with migrated_database(settings) as db:
        return await rotate_credentials(db, build_cipher(settings))


async def register_channel(
    settings: Settings, name: str, redirect_url: str, slug: str | None
) -> RegisteredChannel:
    https_only = settings.environment == "production"
    async with migrated_database(settings) as db:
        return await ChannelService(db, https_only=https_only).register(name, redirect_url, slug)
