"""The application factory. Settings are read and resources built here, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypedDict

import httpx
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from miva_connect import __version__
from miva_connect.api import api_router
from miva_connect.api.errors import add_exception_handlers
from miva_connect.api.metrics import METRICS_PATH, metrics_router
from miva_connect.channels.service import ChannelService
from miva_connect.clientip import Network, parse_networks
from miva_connect.crypto import CredentialCipher
from miva_connect.db.engine import Database, create_engine, watch_checkouts
from miva_connect.db.migrations import head_revision
from miva_connect.egress import AddressPolicy, Resolver
from miva_connect.health import Readiness
from miva_connect.logs import configure_logging
from miva_connect.metrics import Metrics
from miva_connect.middleware import (
    BodyLimitMiddleware,
    HostCheckMiddleware,
    RequestIdMiddleware,
    RequestMetricsMiddleware,
    SecurityHeadersMiddleware,
)
from miva_connect.miva.http import RoundTripObserver, store_http_client
from miva_connect.onboarding.service import OnboardingConfig, OnboardingService
from miva_connect.onboarding.validation import StoreValidator
from miva_connect.ratelimit import LimitsConfig, RateLimiter, storage_uri
from miva_connect.settings import Settings, get_settings
from miva_connect.web import static_files, web_router

log = structlog.get_logger(__name__)

# The largest form is four short fields; anything bigger is refused before parsing.
MAX_BODY_BYTES = 16 * 1024
# Probes arrive by IP address, not by the public host name.
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


class State(TypedDict):
    onboarding: OnboardingService
    channels: ChannelService
    readiness: Readiness
    trusted_proxies: tuple[Network, ...]


def build_cipher(settings: Settings) -> CredentialCipher:
    cipher = CredentialCipher([key.get_secret_value() for key in settings.encryption_keys])
    cipher.self_test()
    return cipher


def address_policy(settings: Settings) -> AddressPolicy:
    """Where stores may be: one policy for the URL checks and for the HTTP client's guard."""
    return AddressPolicy(settings.allow_private_networks, frozenset(settings.allowed_ports))


def miva_http_client(
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    observe: RoundTripObserver | None = None,
) -> httpx.AsyncClient:
    """The guarded client for stores; `transport` and `resolver` stand in for the network
    in tests (the guard stays)."""
    return store_http_client(
        timeout=settings.miva_timeout_seconds,
        policy=address_policy(settings),
        resolver=resolver,
        transport=transport,
        network=settings.store_network,
        # Each validation holds up to two connections (the signed and the unsigned check).
        max_connections=2 * settings.max_concurrent_validations + 10,
        observe=observe,
    )


def create_app(
    settings: Settings | None = None,
    *,
    miva_transport: httpx.AsyncBaseTransport | None = None,
    miva_resolver: Resolver | None = None,
) -> FastAPI:
    """Build the service; raises `EncryptionKeyError` without a usable key ring."""
    settings = settings or get_settings()
    configure_logging(
        settings.log_level, settings.log_format, production=settings.environment == "production"
    )
    cipher = build_cipher(settings)
    metrics = Metrics() if settings.metrics == "on" else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        db = Database(
            create_engine(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
            )
        )
        if metrics:
            watch_checkouts(db.engine, metrics.db_connections_changed)
        observe = metrics.store_round_trip if metrics else None
        http = miva_http_client(settings, miva_transport, miva_resolver, observe)
        log.info("service.started", version=__version__, key_ids=cipher.key_ids)
        if not settings.egress_ips:
            log.warning("settings.egress_ips_unset", hint="merchants cannot be told what to allow")
        try:
            yield _state(settings, db, http, cipher, metrics)
        finally:
            await http.aclose()
            await db.dispose()
            log.info("service.stopped")

    development = settings.environment == "development"
    app = FastAPI(
        title="miva-connect",
        version=__version__,
        summary="Connect Miva Merchant stores: validate, store encrypted, redirect.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url="/docs" if development else None,
        redoc_url=None,
    )
    _add_middleware(app, settings, metrics)
    add_exception_handlers(app)
    app.include_router(api_router)
    if metrics:
        app.include_router(metrics_router(metrics, settings.metrics_token))
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """The service configured from the environment: the factory each `serve` worker calls."""
    return create_app(Settings())


def _state(
    settings: Settings,
    db: Database,
    http: httpx.AsyncClient,
    cipher: CredentialCipher,
    metrics: Metrics | None,
) -> State:
    validator = StoreValidator(
        http, deadline=settings.miva_timeout_seconds, egress_ips=settings.egress_ips
    )
    config = OnboardingConfig(
        public_url=settings.public_base_url,
        session_ttl=timedelta(seconds=settings.session_ttl_seconds),
        address_policy=address_policy(settings),
        egress_ips=tuple(settings.egress_ips),
    )
    limiter = RateLimiter(
        LimitsConfig(
            per_session=settings.rate_limit_per_session,
            per_client=settings.rate_limit_per_client,
            per_store_host=settings.rate_limit_per_store_host,
            sessions_per_client=settings.rate_limit_sessions_per_client,
            max_outbound=settings.max_concurrent_validations,
        ),
        storage_uri(settings.redis_url),
        on_refused=metrics.rate_limited if metrics else None,
    )
    return State(
        onboarding=OnboardingService(db, validator, cipher, config, limiter, outcomes=metrics),
        channels=ChannelService(db, https_only=settings.environment == "production"),
        readiness=Readiness(db, cipher, head_revision(settings.database_url)),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )


def _add_middleware(app: FastAPI, settings: Settings, metrics: Metrics | None) -> None:
    """Outermost last: metrics, request id, security headers, host check, CORS, body limit."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Scrapers, like probes, arrive by IP address.
    exempt = HEALTH_PATHS | {METRICS_PATH} if metrics else HEALTH_PATHS
    app.add_middleware(HostCheckMiddleware, allowed_hosts=_allowed_hosts(settings), exempt=exempt)
    docs = frozenset({"/docs"}) if settings.environment == "development" else frozenset()
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs)
    app.add_middleware(RequestIdMiddleware)
    if metrics:
        app.add_middleware(RequestMetricsMiddleware, observe=metrics.request_answered)


def _allowed_hosts(settings: Settings) -> list[str]:
    hosts = [settings.public_url.host or "", *settings.allowed_hosts]
    if settings.environment == "development":
        hosts += ["localhost", "127.0.0.1", "[::1]"]
    return [host for host in hosts if host]
