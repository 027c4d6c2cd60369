"""Registering channels, authenticating them, and showing them their merchants."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from miva_connect.db.engine import Database
from miva_connect.db.models import Channel
from miva_connect.db.repositories import ChannelRepository, MerchantRepository
from miva_connect.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from miva_connect.tokens import MAX_TOKEN_LENGTH, matches, new_token, token_hash

log = structlog.get_logger(__name__)

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# `/connect/sessions/...` is the session page, so no channel may be called "sessions".
RESERVED_SLUGS = frozenset({"sessions"})
# Compared against when the channel id is unknown, so both paths cost one hash check.
_UNKNOWN_CHANNEL_HASH = token_hash("unknown-channel")


@dataclass(frozen=True)
class RegisteredChannel:
    id: str
    slug: str
    name: str
    redirect_url: str
    secret: str

    def __repr__(self) -> str:
        return f"RegisteredChannel(id={self.id!r}, slug={self.slug!r})"


@dataclass(frozen=True)
class MerchantView:
    merchant_id: str
    store_url: str
    store_code: str
    store_name: str
    status: str
    verified_groups: list[str]
    signature_enforced: bool | None
    created_at: datetime
    updated_at: datetime
    connected_at: datetime


def is_slug(value: str) -> bool:
    return bool(_SLUG.match(value))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "channel"


def check_redirect_url(url: str, *, https_only: bool = False) -> str:
    """An absolute http(s) URL without user info: where merchants are sent back."""
    url = url.strip()
    schemes = ("https",) if https_only else ("http", "https")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in schemes
        or not parts.hostname
        or "@" in parts.netloc
        or len(url) > 2048
        or any(c.isspace() for c in url)
    ):
        raise InvalidRequest(
            f"The redirect URL must be an absolute {' or '.join(schemes)} URL without user info.",
            code="invalid_redirect_url",
            field="redirect_url",
        )
    return url


class ChannelService:
    def __init__(self, db: Database, *, https_only: bool = False) -> None:
        self._db = db
        self._https_only = https_only

    async def register(
        self, name: str, redirect_url: str, slug: str | None = None
    ) -> RegisteredChannel:
        """Create a channel; its secret is returned this once and stored only as a hash."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("A channel needs a name (at most 200 characters).", field="name")
        slug = slug.strip().lower() if slug else slugify(name)
        if not is_slug(slug) or slug in RESERVED_SLUGS:
            raise InvalidRequest(
                "A slug is 1 to 64 lower-case letters, digits and inner hyphens.", field="slug"
            )
        redirect_url = check_redirect_url(redirect_url, https_only=self._https_only)
        secret = new_token()
        channel = Channel(
            id=str(uuid.uuid4()),
            slug=slug,
            name=name,
            redirect_url=redirect_url,
            secret_hash=token_hash(secret),
        )
        async with self._db.transaction() as tx:
            repository = ChannelRepository(tx)
            if await repository.get_by_slug(slug) is not None:
                raise Conflict(f"The slug {slug!r} is taken.", code="slug_taken", field="slug")
            await repository.add(channel)
        log.info("channel.registered", channel_id=channel.id, slug=slug)
        return RegisteredChannel(channel.id, slug, name, redirect_url, secret)

    async def reset_secret(self, slug: str, redirect_url: str | None = None) -> RegisteredChannel:
        """Give a channel a new secret (and optionally a new redirect URL)."""
        secret = new_token()
        async with self._db.transaction() as tx:
            channel = await ChannelRepository(tx).get_by_slug(slug)
            if channel is None:
                raise NotFound(f"No channel has the slug {slug!r}.", code="channel_not_found")
            channel.secret_hash = token_hash(secret)
            if redirect_url is not None:
                channel.redirect_url = check_redirect_url(redirect_url, https_only=self._https_only)
        return RegisteredChannel(
            channel.id, channel.slug, channel.name, channel.redirect_url, secret
        )

    async def authenticate(self, channel_id: str, secret: str) -> Channel:
        channel = None
        if _is_uuid(channel_id) and 0 < len(secret) <= MAX_TOKEN_LENGTH:
            async with self._db.transaction() as tx:
                channel = await ChannelRepository(tx).get(channel_id)
        expected = channel.secret_hash if channel else _UNKNOWN_CHANNEL_HASH
        if not matches(secret, expected) or channel is None:
            raise Unauthorized("Unknown channel id or wrong secret.")
        return channel

    async def merchant(self, channel: Channel, merchant_id: str) -> MerchantView:
        """A merchant connected through this channel; never any secret."""
        merchant = None
        if _is_uuid(merchant_id):
            async with self._db.transaction() as tx:
                merchant = await MerchantRepository(tx).get_linked(merchant_id, channel.id)
        if merchant is None:
            raise NotFound("No merchant with this id is connected through your channel.")
        return MerchantView(
            merchant_id=merchant.id,
            store_url=merchant.store_url,
            store_code=merchant.store_code,
            store_name=merchant.store_name,
            status=merchant.status,
            verified_groups=list(merchant.verified_groups),
            signature_enforced=merchant.signature_enforced,
            created_at=merchant.created_at,
            updated_at=merchant.updated_at,
            connected_at=merchant.connected_at,
        )
