"""The onboarding flow: open a session, check the store URL, validate and store credentials."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import structlog

from miva_connect import miva
from miva_connect.channels.service import is_slug
from miva_connect.crypto import CredentialCipher
from miva_connect.db.base import utcnow
from miva_connect.db.engine import Database
from miva_connect.db.models import Channel
from miva_connect.db.repositories import (
    ChannelRecord,
    ChannelRepository,
    MerchantRepository,
    SessionRepository,
)
from miva_connect.egress import AddressPolicy
from miva_connect.errors import AppError, InvalidRequest, NotFound, ValidationFailed
from miva_connect.onboarding import sessions
from miva_connect.onboarding.credentials import StoreCredentials, endpoint_for, prepare_credentials
from miva_connect.onboarding.redirects import with_query
from miva_connect.onboarding.results import Connection, OpenedSession, SessionView
from miva_connect.onboarding.validation import StoreValidator, warnings_for
from miva_connect.ratelimit import RateLimiter
from miva_connect.tokens import new_token, token_hash

log = structlog.get_logger(__name__)

MAX_STATE_LENGTH = 512
T = TypeVar("T")


@dataclass(frozen=True)
class OnboardingConfig:
    public_url: str
    session_ttl: timedelta
    address_policy: AddressPolicy
    egress_ips: tuple[str, ...] = ()


class OutcomeRecorder(Protocol):
    """Counts each validation's outcome: `ok`, or the error code the merchant is given."""

    def validation_outcome(self, step: str, code: str) -> None: ...


class _NoRecorder:
    def validation_outcome(self, step: str, code: str) -> None:
        pass


class OnboardingService:
    def __init__(
        self,
        db: Database,
        validator: StoreValidator,
        cipher: CredentialCipher,
        config: OnboardingConfig,
        limiter: RateLimiter,
        *,
        clock: Callable[[], datetime] = utcnow,
        outcomes: OutcomeRecorder | None = None,
    ) -> None:
        self._db = db
        self._outcomes = outcomes or _NoRecorder()
        self._validator = validator
        self._limiter = limiter
        self._cipher = cipher
        self._config = config
        self._clock = clock
        self._policy = config.address_policy

    async def open_session(self, channel: Channel, state: str) -> OpenedSession:
        _check_state(state)
        token = new_token()
        expires_at = self._clock() + self._config.session_ttl
        async with self._db.transaction() as tx:
            await SessionRepository(tx).add(
                {
                    "id": str(uuid.uuid4()),
                    "token_hash": token_hash(token),
                    "channel_id": channel.id,
                    "state": state,
                    "status": "pending",
                    "attempt_count": 0,
                    "created_at": self._clock(),
                    "expires_at": expires_at,
                }
            )
        log.info("onboarding.session.opened", channel_id=channel.id)
        return OpenedSession(token, self.connect_url(token), expires_at)

    async def open_session_for_slug(self, slug: str, state: str, client: str) -> OpenedSession:
        """A channel's public link: anyone may open a session, so it is rate-limited."""
        await self._limiter.check_session_opening(client)
        channel = None
        if is_slug(slug):
            async with self._db.transaction() as tx:
                channel = await ChannelRepository(tx).get_by_slug(slug)
        if channel is None:
            raise NotFound("No channel is registered under this link.", code="channel_not_found")
        return await self.open_session(channel, state)

    @property
    def public_url(self) -> str:
        return self._config.public_url

    @property
    def egress_ips(self) -> tuple[str, ...]:
        """The addresses a merchant must allow on the token (may be empty)."""
        return self._config.egress_ips

    def connect_url(self, token: str) -> str:
        return f"{self._config.public_url}/connect/sessions/{token}"

    async def describe(self, token: str) -> SessionView:
        found = await sessions.load(self._db, token, self._clock())
        return SessionView(
            status=found.status,
            expires_at=found.session.expires_at,
            store_url=found.session.store_url,
            channel_name=found.channel.name,
            merchant_id=found.session.merchant_id,
            channel_redirect_url=found.channel.redirect_url,
        )

    async def check_store_url(self, token: str, raw_url: str, client: str) -> str:
        """Normalise the URL and confirm it is a Miva JSON API; remember it on the session."""
        found = await sessions.load_pending(self._db, token, self._clock())
        try:
            endpoint = endpoint_for(raw_url, policy=self._policy)
            await self._reach_store(
                found, client, endpoint, lambda: self._validator.check_endpoint(endpoint)
            )
        except AppError as failure:
            self._outcomes.validation_outcome("store_url", failure.code)
            await sessions.record(self._db, found.session.id, failure.code)
            raise
        self._outcomes.validation_outcome("store_url", "ok")
        await sessions.record(self._db, found.session.id, "store_url_ok", store_url=endpoint)
        return endpoint

    async def connect(self, token: str, submitted: StoreCredentials, client: str) -> Connection:
        """Validate credentials against the store, store them encrypted, complete the session."""
        found = await sessions.load_pending(self._db, token, self._clock())
        try:
            credentials = prepare_credentials(
                submitted, found.session.store_url, policy=self._policy
            )
            verification = await self._reach_store(
                found, client, credentials.store_url, lambda: self._validator.verify(credentials)
            )
        except AppError as failure:
            self._outcomes.validation_outcome("credentials", failure.code)
            await sessions.record(self._db, found.session.id, failure.code)
            log.info("onboarding.credentials.rejected", code=failure.code)
            raise
        self._outcomes.validation_outcome("credentials", "ok")
        merchant_id = await self._save(found, credentials, verification)
        log.info("onboarding.connected", merchant_id=merchant_id, channel_id=found.channel.id)
        return Connection(
            merchant_id=merchant_id,
            store_name=verification.store_name,
            redirect_url=self._redirect_url(found.channel, found.session.state, merchant_id),
            warnings=warnings_for(verification),
        )

    async def redirect_url(self, token: str) -> str:
        found = await sessions.load(self._db, token, self._clock())
        if found.status != "connected" or found.session.merchant_id is None:
            raise sessions.not_connected()
        return self._redirect_url(found.channel, found.session.state, found.session.merchant_id)

    async def _reach_store(
        self,
        found: sessions.FoundSession,
        client: str,
        endpoint: str,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        """Spend the budgets first (no DNS, no connection before that), then call the store."""
        session_id = found.session.id
        host = urlsplit(endpoint).hostname or ""
        await self._limiter.check_validation(session=session_id, client=client, store_host=host)
        try:
            async with self._limiter.outbound_slot():
                return await work()
        except ValidationFailed:
            await self._limiter.record_failure(session=session_id, client=client)
            raise

    def _redirect_url(self, channel: ChannelRecord, state: str, merchant_id: str) -> str:
        return with_query(channel.redirect_url, state=state, merchant_id=merchant_id)

    async def _save(
        self,
        found: sessions.FoundSession,
        credentials: StoreCredentials,
        verification: miva.Verification,
    ) -> str:
        now = self._clock()
        async with self._db.begin() as tx:
            merchants = MerchantRepository(tx)
            merchant_id = await self._upsert_merchant(merchants, credentials, verification, now)
            if not await SessionRepository(tx).complete(
                found.session.id, merchant_id, credentials.store_url, now
            ):
                raise await sessions.completion_conflict(tx, found.session.id)
            await merchants.link_channel(found.channel.id, merchant_id)
        return merchant_id

    async def _upsert_merchant(
        self,
        merchants: MerchantRepository,
        credentials: StoreCredentials,
        verification: miva.Verification,
        now: datetime,
    ) -> str:
        """One merchant per store: insert it, or replace the credentials of the known one."""
        new_id = str(uuid.uuid4())
        values = self._merchant_values(new_id, credentials, verification, now)
        if await merchants.insert_if_absent({**values, "id": new_id, "created_at": now}):
            return new_id
        existing = await merchants.lock_id_by_store(
            credentials.store_url, credentials.store_code_key
        )
        if existing is None:  # the insert conflicted, and merchants are never deleted
            raise RuntimeError("merchant row vanished during upsert")
        await merchants.update(
            existing, self._merchant_values(existing, credentials, verification, now)
        )
        return existing

    def _merchant_values(
        self,
        merchant_id: str,
        credentials: StoreCredentials,
        verification: miva.Verification,
        now: datetime,
    ) -> dict[str, object]:
        # Each ciphertext names its merchant and field, so it cannot be moved to another row.
        def seal(field: str, value: str) -> str:
            return self._cipher.encrypt(value, context=f"merchant:{merchant_id}:{field}")

        return {
            "store_url": credentials.store_url,
            "store_code": _display_code(credentials, verification),
            "store_code_key": credentials.store_code_key,
            "store_name": verification.store_name,
            "status": "connected",
            "api_key_ciphertext": seal("api_key", credentials.api_key),
            "signing_key_ciphertext": seal("signing_key", credentials.signing_key),
            "key_id": self._cipher.primary_key_id,
            "verified_groups": list(verification.granted_groups),
            "signature_enforced": verification.signature_enforced,
            "updated_at": now,
            "connected_at": now,
        }


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 escape can carry
        return False
    return True


def _check_state(state: str) -> None:
    # Returned unchanged to the channel; only what a database text column cannot hold is refused.
    if len(state) > MAX_STATE_LENGTH or "\x00" in state or not _is_utf8(state):
        raise InvalidRequest(
            f"state must be at most {MAX_STATE_LENGTH} characters, without NUL characters.",
            code="invalid_state",
            field="state",
        )


def _display_code(credentials: StoreCredentials, verification: miva.Verification) -> str:
    """The store's own spelling of its code, when it is the code the merchant typed."""
    if verification.store_code.upper() == credentials.store_code_key:
        return verification.store_code
    return credentials.store_code
