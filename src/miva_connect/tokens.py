"""Bearer tokens for sessions and channel secrets: random, and stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, expected_hash: str) -> bool:
    """Constant-time check of a token against a stored hash."""
    return hmac.compare_digest(token_hash(token), expected_hash)
