"""ORM models. Secrets live only as ciphertext columns, never in a repr."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from miva_connect.db.base import Base, UTCDateTime, utcnow

UUID_LENGTH = 36
SHA256_HEX_LENGTH = 64


class Channel(Base):
    """An app that sends merchants to us and receives them back."""

    __tablename__ = "channel"

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    redirect_url: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"Channel(id={self.id!r}, slug={self.slug!r})"


class OnboardingSession(Base):
    """One merchant's visit, opened by a channel; identified by a token kept only as a hash."""

    __tablename__ = "onboarding_session"

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH), unique=True)
    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    store_url: Mapped[str | None] = mapped_column(Text)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchant.id"), index=True)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"OnboardingSession(id={self.id!r}, status={self.status!r})"


class Merchant(Base):
    """A connected Miva store: one per (endpoint URL, upper-cased store code)."""

    __tablename__ = "merchant"
    __table_args__ = (UniqueConstraint("store_url", "store_code_key"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    store_url: Mapped[str] = mapped_column(String(2048))
    store_code: Mapped[str] = mapped_column(String(64))
    store_code_key: Mapped[str] = mapped_column(String(64))
    store_name: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="connected")
    api_key_ciphertext: Mapped[str] = mapped_column(Text)
    signing_key_ciphertext: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    verified_groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    signature_enforced: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"Merchant(id={self.id!r}, store_code={self.store_code!r})"


class ChannelMerchant(Base):
    """Which channels a merchant connected through."""

    __tablename__ = "channel_merchant"

    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), primary_key=True
    )
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchant.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EncryptionCheck(Base):
    """A value encrypted at first start; readiness proves the key ring still opens it."""

    __tablename__ = "encryption_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
