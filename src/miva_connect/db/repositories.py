"""All SQL lives here. Repositories flush; the caller's transaction commits.

Writes are Core statements on the tables: an ORM-enabled INSERT or UPDATE runs the
ORM's bulk-persistence machinery (and, for an UPDATE, evaluates its WHERE against every
object in the session), which cost more CPU than the whole round trip to Postgres.
No write here needs it: no loaded object is kept across them. The statements of every
validation are also built once, with bound parameters: building one and computing its
cache key cost about as much CPU as running it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from miva_connect.db.models import (
    Channel,
    ChannelMerchant,
    EncryptionCheck,
    Merchant,
    OnboardingSession,
)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


CHANNELS = _table(Channel)
SESSIONS = _table(OnboardingSession)
MERCHANTS = _table(Merchant)
CHANNEL_MERCHANTS = _table(ChannelMerchant)
ENCRYPTION_CHECKS = _table(EncryptionCheck)


# Core statements run on either; ORM objects need a session. Reads on the validation path
# use a bare connection: an AsyncSession and ORM loading doubled the cost of the query.
Executor = AsyncSession | AsyncConnection


def _dialect(executor: Executor) -> str:
    bind = executor if isinstance(executor, AsyncConnection) else executor.get_bind()
    return bind.dialect.name


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the onboarding flow reads of a session."""

    id: str
    status: str
    state: str
    store_url: str | None
    merchant_id: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """What the onboarding flow reads of the session's channel."""

    id: str
    name: str
    redirect_url: str


def _insert(dialect: str, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on both Postgres and SQLite."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_SESSION_BY_TOKEN_HASH = (
    select(
        *(SESSIONS.c[field.name] for field in fields(SessionRecord)),
        *(CHANNELS.c[field.name] for field in fields(ChannelRecord)),
    )
    .join_from(SESSIONS, CHANNELS, CHANNELS.c.id == SESSIONS.c.channel_id)
    .where(SESSIONS.c.token_hash == bindparam("token_hash"))
)
_LOCK_MERCHANT_BY_STORE = (
    select(MERCHANTS.c.id)
    .where(
        MERCHANTS.c.store_url == bindparam("store_url"),
        MERCHANTS.c.store_code_key == bindparam("store_code_key"),
    )
    .with_for_update()
)
_SESSION_STATUS = select(SESSIONS.c.status).where(SESSIONS.c.id == bindparam("session_id"))
_CHECK_CIPHERTEXT = select(ENCRYPTION_CHECKS.c.ciphertext).where(ENCRYPTION_CHECKS.c.id == 1)
# The other columns to set come with the parameters.
_COMPLETE_SESSION = (
    update(SESSIONS)
    .where(
        SESSIONS.c.id == bindparam("session_id"),
        SESSIONS.c.status == "pending",
        SESSIONS.c.expires_at > bindparam("now"),
    )
    .values(status="connected", attempt_count=SESSIONS.c.attempt_count + 1, last_error_code=None)
)


# INSERTs name their columns with the parameters.
@cache
def _insert_merchant(dialect: str) -> Any:
    return (
        _insert(dialect, MERCHANTS)
        .on_conflict_do_nothing(index_elements=["store_url", "store_code_key"])
        .returning(MERCHANTS.c.id)
    )


@cache
def _link_channel(dialect: str) -> Any:
    return _insert(dialect, CHANNEL_MERCHANTS).on_conflict_do_nothing(
        index_elements=["channel_id", "merchant_id"]
    )


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, channel_id: str) -> Channel | None:
        return await self.session.get(Channel, channel_id)

    async def get_by_slug(self, slug: str) -> Channel | None:
        return await self.session.scalar(select(Channel).where(Channel.slug == slug))

    async def add(self, channel: Channel) -> Channel:
        self.session.add(channel)
        await self.session.flush()
        return channel


class SessionRepository:
    def __init__(self, session: Executor) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(SESSIONS), values)

    async def status(self, session_id: str) -> str | None:
        return await self.session.scalar(_SESSION_STATUS, {"session_id": session_id})

    async def get_by_token_hash(
        self, token_hash: str
    ) -> tuple[SessionRecord, ChannelRecord] | None:
        result = await self.session.execute(_SESSION_BY_TOKEN_HASH, {"token_hash": token_hash})
        row = result.first()
        if row is None:
            return None
        split = len(fields(SessionRecord))
        return SessionRecord(*row[:split]), ChannelRecord(*row[split:])

    async def record_attempt(
        self, session_id: str, outcome: str, *, store_url: str | None = None
    ) -> None:
        values: dict[str, Any] = {
            "attempt_count": SESSIONS.c.attempt_count + 1,
            "last_error_code": outcome,
        }
        if store_url is not None:
            values["store_url"] = store_url
        await self.session.execute(
            update(SESSIONS)
            .where(SESSIONS.c.id == session_id, SESSIONS.c.status == "pending")
            .values(**values)
        )

    async def complete(
        self, session_id: str, merchant_id: str, store_url: str, now: datetime
    ) -> bool:
        """Mark a pending, unexpired session connected; False if it was not (one winner)."""
        result = await self.session.execute(
            _COMPLETE_SESSION,
            {
                "session_id": session_id,
                "now": now,
                "merchant_id": merchant_id,
                "store_url": store_url,
                "completed_at": now,
            },
        )
        return getattr(result, "rowcount", 0) == 1


class MerchantRepository:
    """Writes run on a session or a connection; loading `Merchant` objects needs a session."""

    def __init__(self, session: Executor) -> None:
        self.session = session

    def _orm(self) -> AsyncSession:
        # On a bare connection, select(Merchant) would return the first column, not objects.
        if not isinstance(self.session, AsyncSession):
            raise TypeError("loading Merchant objects needs an AsyncSession")
        return self.session

    async def get_linked(self, merchant_id: str, channel_id: str) -> Merchant | None:
        return await self._orm().scalar(
            select(Merchant)
            .join(ChannelMerchant, ChannelMerchant.merchant_id == Merchant.id)
            .where(Merchant.id == merchant_id, ChannelMerchant.channel_id == channel_id)
        )

    async def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a merchant unless its store is known; True if this call inserted it."""
        statement = _insert_merchant(_dialect(self.session))
        return (await self.session.scalar(statement, values)) is not None

    async def lock_id_by_store(self, store_url: str, store_code_key: str) -> str | None:
        """The id of the store's merchant, its row locked until the transaction ends."""
        return await self.session.scalar(
            _LOCK_MERCHANT_BY_STORE, {"store_url": store_url, "store_code_key": store_code_key}
        )

    async def update(self, merchant_id: str, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(MERCHANTS).where(MERCHANTS.c.id == merchant_id).values(**values)
        )

    async def link_channel(self, channel_id: str, merchant_id: str) -> None:
        await self.session.execute(
            _link_channel(_dialect(self.session)),
            {"channel_id": channel_id, "merchant_id": merchant_id},
        )

    async def needing_rotation(self, primary_key_id: str, after: str, limit: int) -> list[Merchant]:
        """Merchants encrypted under another key, in id order after `after`, locked."""
        return list(
            await self._orm().scalars(
                select(Merchant)
                .where(Merchant.key_id != primary_key_id, Merchant.id > after)
                .order_by(Merchant.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )


class EncryptionCheckRepository:
    def __init__(self, session: Executor) -> None:
        self.session = session

    async def ciphertext(self) -> str | None:
        """The sealed check value, or None before the first readiness check."""
        return await self.session.scalar(_CHECK_CIPHERTEXT)

    async def replace(self, ciphertext: str) -> None:
        await self.session.execute(
            update(ENCRYPTION_CHECKS)
            .where(ENCRYPTION_CHECKS.c.id == 1)
            .values(ciphertext=ciphertext)
        )

    async def add_if_absent(self, ciphertext: str) -> None:
        await self.session.execute(
            _insert(_dialect(self.session), ENCRYPTION_CHECKS)
            .values(id=1, ciphertext=ciphertext)
            .on_conflict_do_nothing(index_elements=["id"])
        )
