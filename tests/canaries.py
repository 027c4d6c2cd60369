"""Secrets used by the tests, registered so that the suite can prove none of them leaks.

Every API key, signing key, Fernet key and channel secret the tests submit or configure
comes from here; `tests/conftest.py` fails the run if one appears in a log record, a
response, or a database row in clear. Session tokens are bearer secrets handed to their
holder in responses, so they are only required never to reach the log output or the
database.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet

CANARIES: set[str] = set()
BEARER_TOKENS: set[str] = set()


def register(value: str) -> str:
    CANARIES.add(value)
    return value


def api_key() -> str:
    return register("canaryKey" + secrets.token_hex(12))


def signing_key() -> str:
    return register(base64.b64encode(b"CANARY-SIGNING-" + secrets.token_bytes(17)).decode())


def fernet_key() -> str:
    return register(Fernet.generate_key().decode())


def bearer(value: str) -> str:
    BEARER_TOKENS.add(value)
    return value


def found_in(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def bearer_found_in(text: str) -> list[str]:
    return [token for token in BEARER_TOKENS if token in text]
