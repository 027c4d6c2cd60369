"""Encryption of stored credentials with a rotatable Fernet key ring.

Format of a stored value: `v1.<key id>.<Fernet token>`. The key id (first 8 hex
digits of the key's SHA-256) names the key that encrypted it, so ops can tell which
rows an old key still guards. Fernet has no associated data, so the plaintext is a
small JSON document carrying a *context* (for example `merchant:<id>:api_key`):
a ciphertext copied into another row decrypts, but fails the context check.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

VERSION = "v1"
_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")


class EncryptionKeyError(ValueError):
    """The configured key ring is empty or holds a malformed key."""


class DecryptionError(Exception):
    """A stored value could not be decrypted: unknown key, tampering, or wrong row."""

    def __init__(self, reason: str, key_id: str | None) -> None:
        super().__init__(f"{reason} (key id {key_id or 'unknown'})")
        self.reason = reason
        self.key_id = key_id


def key_id(key: str) -> str:
    """A short, non-secret name for a key."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:8]


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class CredentialCipher:
    """Encrypts with the first key; decrypts with any key of the ring."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise EncryptionKeyError("no encryption key configured")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                # Fernet's own decoder skips stray characters ("K1;K2" would pass as K1).
                if not _FERNET_KEY.fullmatch(key.strip()):
                    raise ValueError("malformed")
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError):
                raise EncryptionKeyError(
                    f"encryption key #{position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with `miva-connect keys generate`)"
                ) from None
        self._ring = MultiFernet(fernets)
        self.key_ids = tuple(key_id(k.strip()) for k in keys)

    @property
    def primary_key_id(self) -> str:
        return self.key_ids[0]

    def encrypt(self, plaintext: str, *, context: str) -> str:
        document = json.dumps({"c": context, "v": plaintext}, separators=(",", ":"))
        token = self._ring.encrypt(document.encode("utf-8")).decode("ascii")
        return f"{VERSION}.{self.primary_key_id}.{token}"

    def decrypt(self, stored: str, *, context: str) -> str:
        version, _, rest = stored.partition(".")
        stored_key_id, _, token = rest.partition(".")
        if version != VERSION or not token:
            raise DecryptionError("unknown ciphertext format", None)
        try:
            document = json.loads(self._ring.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeError):
            reason = "no configured key decrypts it"
            if stored_key_id in self.key_ids:
                reason = "ciphertext was altered"
            raise DecryptionError(reason, stored_key_id) from None
        if not isinstance(document, dict) or document.get("c") != context:
            raise DecryptionError("ciphertext belongs to another record", stored_key_id)
        return str(document["v"])

    def stored_key_id(self, stored: str) -> str | None:
        parts = stored.split(".", 2)
        return parts[1] if len(parts) == 3 and parts[0] == VERSION else None

    def needs_rotation(self, stored: str) -> bool:
        return self.stored_key_id(stored) != self.primary_key_id

    def rotate(self, stored: str, *, context: str) -> str:
        """Re-encrypt under the primary key (same context)."""
        return self.encrypt(self.decrypt(stored, context=context), context=context)

    def self_test(self) -> None:
        """Round-trip a value under the primary key; raise `EncryptionKeyError` if it fails."""
        probe = self.encrypt("self-test", context="self-test")
        if self.decrypt(probe, context="self-test") != "self-test":
            raise EncryptionKeyError("encryption self-test failed")

    def __repr__(self) -> str:
        return f"CredentialCipher(key_ids={self.key_ids!r})"
