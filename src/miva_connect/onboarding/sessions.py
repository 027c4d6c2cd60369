"""Loading onboarding sessions by their bearer token, and the errors a stale one gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from miva_connect.db.engine import Database
from miva_connect.db.repositories import (
    ChannelRecord,
    Executor,
    SessionRecord,
    SessionRepository,
)
from miva_connect.errors import AppError, Conflict, NotFound, SessionExpired
from miva_connect.tokens import MAX_TOKEN_LENGTH, token_hash


@dataclass(frozen=True)
class FoundSession:
    session: SessionRecord
    channel: ChannelRecord
    status: str  # pending, connected or expired


async def load(db: Database, token: str, now: datetime) -> FoundSession:
    """The session for a token, whatever its status; `NotFound` or `SessionExpired` if stale."""
    found = None
    if 0 < len(token) <= MAX_TOKEN_LENGTH:
        async with db.read() as reader:
            found = await SessionRepository(reader).get_by_token_hash(token_hash(token))
    if found is None:
        raise NotFound(
            "This onboarding link is not valid. Go back to the app that sent you and start again.",
            code="session_not_found",
        )
    session, channel = found
    # Connected sessions expire too: their URLs carry `state` and `merchant_id`.
    if session.expires_at <= now:
        raise expired()
    return FoundSession(session, channel, session.status)


async def load_pending(db: Database, token: str, now: datetime) -> FoundSession:
    """Like `load`, but a session that is already connected is a `Conflict`."""
    found = await load(db, token, now)
    if found.status != "pending":
        raise completed()
    return found


async def record(
    db: Database, session_id: str, outcome: str, *, store_url: str | None = None
) -> None:
    """Keep the outcome code of an attempt (and a checked store URL); nothing else."""
    async with db.transaction() as tx:
        await SessionRepository(tx).record_attempt(session_id, outcome, store_url=store_url)


async def completion_conflict(tx: Executor, session_id: str) -> AppError:
    """Why completing a session failed: someone completed it first, or it just expired."""
    if await SessionRepository(tx).status(session_id) == "connected":
        return completed()
    return expired()


def expired() -> SessionExpired:
    return SessionExpired(
        "This onboarding session has expired. Go back to the app that sent you and start again.",
    )


def completed() -> Conflict:
    return Conflict(
        "This store has already been connected in this session.", code="session_completed"
    )


def not_connected() -> Conflict:
    return Conflict(
        "This session is not connected yet: submit the store's credentials first.",
        code="session_not_connected",
    )
