"""Secrets used by the tests, registered so that the suite can prove none of them leaks.

Every API key, signing key and Fernet key the tests submit or configure comes from
here; `tests/conftest.py` fails the run if one appears in a log record, a response,
or a database row in clear.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet

CANARIES: set[str] = set()


def register(value: str) -> str:
    CANARIES.add(value)
    return value


def api_key() -> str:
    return register("canaryKey" + secrets.token_hex(12))


def signing_key() -> str:
    return register(base64.b64encode(b"CANARY-SIGNING-" + secrets.token_bytes(17)).decode())


def fernet_key() -> str:
    return register(Fernet.generate_key().decode())


def found_in(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]
