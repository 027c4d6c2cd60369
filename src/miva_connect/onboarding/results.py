"""What the onboarding services return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class OpenedSession:
    token: str
    connect_url: str
    expires_at: datetime
    status: str = "pending"

    def __repr__(self) -> str:
        return f"OpenedSession(expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class SessionView:
    status: str
    expires_at: datetime
    store_url: str | None
    channel_name: str
    merchant_id: str | None
    channel_redirect_url: str = ""


@dataclass(frozen=True)
class Notice:
    code: str
    message: str


@dataclass(frozen=True)
class Connection:
    merchant_id: str
    store_name: str
    redirect_url: str
    warnings: list[Notice] = field(default_factory=list)
    status: str = "connected"
