"""The application factory. Settings are read and resources built here, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypedDict

import httpx
import structlog
from fastapi import FastAPI

from miva_connect import __version__
from miva_connect.api import api_router
from miva_connect.api.errors import add_exception_handlers
from miva_connect.channels.service import ChannelService
from miva_connect.crypto import CredentialCipher
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import head_revision
from miva_connect.health import Readiness
from miva_connect.logs import configure_logging
from miva_connect.middleware import BodyLimitMiddleware, RequestIdMiddleware
from miva_connect.miva.http import store_http_client
from miva_connect.onboarding.service import OnboardingConfig, OnboardingService
from miva_connect.onboarding.validation import StoreValidator
from miva_connect.settings import Settings, get_settings

log = structlog.get_logger(__name__)

# The largest form is four short fields; anything bigger is refused before parsing.
MAX_BODY_BYTES = 16 * 1024


class State(TypedDict):
    onboarding: OnboardingService
    channels: ChannelService
    readiness: Readiness


def build_cipher(settings: Settings) -> CredentialCipher:
    cipher = CredentialCipher([key.get_secret_value() for key in settings.encryption_keys])
    cipher.self_test()
    return cipher


def miva_http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return store_http_client(timeout=settings.miva_timeout_seconds, transport=transport)


def create_app(
    settings: Settings | None = None, *, miva_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the service; raises `EncryptionKeyError` without a usable key ring."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    cipher = build_cipher(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        db = Database(create_engine(settings.database_url))
        http = miva_http_client(settings, miva_transport)
        validator = StoreValidator(
            http, deadline=settings.miva_timeout_seconds, egress_ips=settings.egress_ips
        )
        config = OnboardingConfig(
            public_url=settings.public_base_url,
            session_ttl=timedelta(seconds=settings.session_ttl_seconds),
            allow_private_networks=settings.allow_private_networks,
        )
        log.info("service.started", version=__version__, key_ids=cipher.key_ids)
        if not settings.egress_ips:
            log.warning("settings.egress_ips_unset", hint="merchants cannot be told what to allow")
        try:
            yield State(
                onboarding=OnboardingService(db, validator, cipher, config),
                channels=ChannelService(db, https_only=settings.environment == "production"),
                readiness=Readiness(db, cipher, head_revision(settings.database_url)),
            )
        finally:
            await http.aclose()
            await db.dispose()
            log.info("service.stopped")

    app = FastAPI(
        title="miva-connect",
        version=__version__,
        summary="Connect Miva Merchant stores: validate, store encrypted, redirect.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestIdMiddleware)
    add_exception_handlers(app)
    app.include_router(api_router)
    return app
