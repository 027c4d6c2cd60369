"""All SQL lives here. Repositories flush; the caller's transaction commits.

Writes are Core statements on the tables: an ORM-enabled INSERT or UPDATE runs the
ORM's bulk-persistence machinery (and, for an UPDATE, evaluates its WHERE against every
object in the session), which cost more CPU than the whole round trip to Postgres.
No write here needs it: no loaded object is kept across them. The statements of every
validation are also built once, with bound parameters: building one and computing its
cache key cost about as much CPU as running it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from miva_connect.db.models import (
    Channel,
    ChannelMerchant,
    EncryptionCheck,
    Merchant,
    OnboardingSession,
)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


SESSIONS = _table(OnboardingSession)
MERCHANTS = _table(Merchant)
CHANNEL_MERCHANTS = _table(ChannelMerchant)
ENCRYPTION_CHECKS = _table(EncryptionCheck)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _insert(dialect: str, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on both Postgres and SQLite."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_SESSION_BY_TOKEN_HASH = (
    select(OnboardingSession, Channel)
    .join(Channel, Channel.id == OnboardingSession.channel_id)
    .where(OnboardingSession.token_hash == bindparam("token_hash"))
)
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
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, onboarding: OnboardingSession) -> OnboardingSession:
        self.session.add(onboarding)
        await self.session.flush()
        return onboarding

    async def get(self, session_id: str) -> OnboardingSession | None:
        return await self.session.get(OnboardingSession, session_id, populate_existing=True)

    async def get_by_token_hash(self, token_hash: str) -> tuple[OnboardingSession, Channel] | None:
        result = await self.session.execute(_SESSION_BY_TOKEN_HASH, {"token_hash": token_hash})
        row = result.first()
        return None if row is None else (row[0], row[1])

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
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_linked(self, merchant_id: str, channel_id: str) -> Merchant | None:
        return await self.session.scalar(
            select(Merchant)
            .join(ChannelMerchant, ChannelMerchant.merchant_id == Merchant.id)
            .where(Merchant.id == merchant_id, ChannelMerchant.channel_id == channel_id)
        )

    async def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a merchant unless its store is known; True if this call inserted it."""
        statement = _insert_merchant(_dialect(self.session))
        return (await self.session.scalar(statement, values)) is not None

    async def lock_by_store(self, store_url: str, store_code_key: str) -> Merchant | None:
        return await self.session.scalar(
            select(Merchant)
            .where(Merchant.store_url == store_url, Merchant.store_code_key == store_code_key)
            .with_for_update()
            .execution_options(populate_existing=True)
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
            await self.session.scalars(
                select(Merchant)
                .where(Merchant.key_id != primary_key_id, Merchant.id > after)
                .order_by(Merchant.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )


class EncryptionCheckRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self) -> EncryptionCheck | None:
        return await self.session.get(EncryptionCheck, 1)

    async def ciphertext(self) -> str | None:
        """The sealed check value alone, without loading an object (readiness reads it)."""
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
