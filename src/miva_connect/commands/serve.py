"""Loading configuration with readable errors, serving the API, registering channels."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import FrameType

import uvicorn
from pydantic import AnyHttpUrl, SecretStr, ValidationError
from uvicorn.supervisors import Multiprocess

from miva_connect.app import build_cipher
from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.crypto import CredentialCipher, EncryptionKeyError
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import current_revision, head_revision
from miva_connect.keyring import RotationReport, rotate_credentials
from miva_connect.logs import configure_logging
from miva_connect.ratelimit import storage_answers, storage_uri
from miva_connect.settings import KeyRingSettings, Settings

# Each worker builds the app (settings, engine, clients) itself; nothing at import time.
APP_FACTORY = "miva_connect.app:create_app_from_env"
CHECK_SECONDS = 5.0
# After the validation deadline: saving the merchant and writing the answer.
SHUTDOWN_MARGIN_SECONDS = 5.0
# uvicorn's default (5 s) also bounds a new worker's start: on a busy or CPU-limited host
# the imports alone can take longer, and the supervisor would kill and respawn it in a loop.
WORKER_HEALTHCHECK_SECONDS = 30
NOT_AT_HEAD = "the database schema is not up to date: run `miva-connect db upgrade`"


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


def key_ring_problems(keys: Sequence[SecretStr]) -> list[str]:
    """Empty when the ring can encrypt and decrypt; otherwise what is wrong with it."""
    if not keys:
        return [
            "MIVA_CONNECT_ENCRYPTION_KEYS is not set: add a key made with "
            "`miva-connect keys generate` (newest first, comma-separated)"
        ]
    try:
        CredentialCipher([key.get_secret_value() for key in keys]).self_test()
    except EncryptionKeyError as error:
        return [f"MIVA_CONNECT_ENCRYPTION_KEYS: {error}"]
    return []


def check_startup(settings: Settings) -> None:
    """Refuse to start without a usable key ring."""
    problems = key_ring_problems(settings.encryption_keys)
    if problems:
        raise ConfigurationError(problems)


async def database_problems(settings: Settings) -> list[str]:
    """Connect within a short timeout, and compare the schema with the migrations' head."""
    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            revision = await current_revision(engine)
    except TimeoutError:
        return [
            "MIVA_CONNECT_DATABASE_URL: the database did not answer "
            f"within {CHECK_SECONDS:g} seconds"
        ]
    except Exception as error:  # every driver has its own errors; the kind is enough here
        return [f"MIVA_CONNECT_DATABASE_URL: cannot use the database ({type(error).__name__})"]
    finally:
        await engine.dispose()
    return [] if revision == head_revision(settings.database_url) else [NOT_AT_HEAD]


async def redis_problems(settings: Settings) -> list[str]:
    """When Redis holds the rate-limit counters, it must answer a PING."""
    if not settings.redis_url:
        return []
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            answers = await storage_answers(storage_uri(settings.redis_url))
    except TimeoutError:
        answers = False
    except Exception as error:  # a URL the client refuses; the kind is enough here
        return [f"MIVA_CONNECT_REDIS_URL: cannot use Redis ({type(error).__name__})"]
    return [] if answers else ["MIVA_CONNECT_REDIS_URL: Redis does not answer"]


async def service_problems(settings: Settings) -> list[str]:
    """What the database and Redis say, checked side by side."""
    database, redis = await asyncio.gather(database_problems(settings), redis_problems(settings))
    return database + redis


def worker_problems(settings: Settings, workers: int) -> list[str]:
    if workers > 1 and not settings.redis_url:
        return [
            f"--workers {workers} needs MIVA_CONNECT_REDIS_URL: without Redis each worker "
            "would keep its own rate-limit counters"
        ]
    return []


def serving_settings(workers: int) -> Settings:
    """Settings `serve` can start with, or `ConfigurationError` with every problem found."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings()
    except ConfigurationError as error:
        problems += error.problems
    # The key ring is checked even when other settings are invalid, to report it too.
    problems += key_ring_problems((settings or KeyRingSettings()).encryption_keys)
    if settings is not None:
        problems += worker_problems(settings, workers)
        problems += asyncio.run(service_problems(settings))
    if problems or settings is None:
        raise ConfigurationError(problems)
    return settings


@asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, refused with a clear line unless its schema is at head."""
    db = Database(create_engine(settings.database_url))
    try:
        if await current_revision(db.engine) != head_revision(settings.database_url):
            raise ConfigurationError([NOT_AT_HEAD])
        yield db
    finally:
        await db.dispose()


def graceful_shutdown_seconds(settings: Settings) -> int:
    """How long a stopping worker lets requests finish: a validation's deadline, and a bit."""
    return math.ceil(settings.miva_timeout_seconds + SHUTDOWN_MARGIN_SECONDS)


def uvicorn_config(
    app: object,
    host: str,
    port: int,
    *,
    shutdown_seconds: int,
    workers: int = 1,
    factory: bool = False,
) -> uvicorn.Config:
    # log_config=None keeps our redacting log setup; no Server header; client addresses
    # come from the socket, and X-Forwarded-For is read only from MIVA_CONNECT_TRUSTED_PROXIES.
    # uvicorn waits for open requests without limit by default: bound it.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=shutdown_seconds,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Without a configured public URL, links point where we listen."""
    if "public_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    return settings.model_copy(update={"public_url": AnyHttpUrl(f"http://{shown}:{port}")})


class Supervisor(Multiprocess):
    """uvicorn's supervisor, closing its own copy of the listening socket when stopping."""

    def terminate_all(self) -> None:
        # Workers close theirs at once; while the supervisor still held one, the kernel
        # would queue new connections that nobody accepts instead of refusing them.
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


@contextmanager
def metrics_directory() -> Iterator[None]:
    """A fresh PROMETHEUS_MULTIPROC_DIR for the workers (prometheus_client's multiprocess
    mode), removed at exit: files left by an earlier run would count again."""
    with tempfile.TemporaryDirectory(prefix="miva-connect-metrics-") as path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _stopped(_signal: int, _frame: FrameType | None) -> None:
    # uvicorn raises SIGTERM again once its graceful shutdown is done: a requested stop.
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stopped)
    settings = with_public_url(serving_settings(args.workers), args.host, args.port)
    # The supervisor logs too (workers starting, dying): in the configured format.
    production = settings.environment == "production"
    configure_logging(settings.log_level, settings.log_format, production=production)
    # Workers read their settings from the environment: hand them the same public URL.
    os.environ["MIVA_CONNECT_PUBLIC_URL"] = str(settings.public_url)
    config = uvicorn_config(
        APP_FACTORY,
        args.host,
        args.port,
        shutdown_seconds=graceful_shutdown_seconds(settings),
        workers=args.workers,
        factory=True,
    )
    if args.workers == 1:
        uvicorn.Server(config).run()
        return 0
    with metrics_directory():
        Supervisor(config, sockets=[config.bind_socket()]).run()
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
