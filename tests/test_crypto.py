from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from miva_connect.crypto import (
    CredentialCipher,
    DecryptionError,
    EncryptionKeyError,
    key_id,
)
from tests import canaries


@pytest.fixture
def old_key() -> str:
    return canaries.fernet_key()


@pytest.fixture
def new_key() -> str:
    return canaries.fernet_key()


class TestCredentialCipher:
    def test_round_trip_carries_the_key_id(self, new_key: str) -> None:
        cipher = CredentialCipher([new_key])
        stored = cipher.encrypt("secret-value", context="merchant:1:api_key")
        assert stored.startswith(f"v1.{key_id(new_key)}.")
        assert "secret-value" not in stored
        assert cipher.decrypt(stored, context="merchant:1:api_key") == "secret-value"

    def test_same_value_encrypts_differently_each_time(self, new_key: str) -> None:
        cipher = CredentialCipher([new_key])
        first = cipher.encrypt("v", context="c")
        assert first != cipher.encrypt("v", context="c")

    def test_ciphertext_moved_to_another_record_fails(self, new_key: str) -> None:
        cipher = CredentialCipher([new_key])
        stored = cipher.encrypt("a's key", context="merchant:a:api_key")
        with pytest.raises(DecryptionError, match="another record"):
            cipher.decrypt(stored, context="merchant:b:api_key")
        with pytest.raises(DecryptionError):
            cipher.decrypt(stored, context="merchant:a:signing_key")

    def test_rotation_keeps_old_values_readable(self, old_key: str, new_key: str) -> None:
        before = CredentialCipher([old_key]).encrypt("v", context="c")
        ring = CredentialCipher([new_key, old_key])
        assert ring.decrypt(before, context="c") == "v"
        assert ring.needs_rotation(before)
        rotated = ring.rotate(before, context="c")
        assert not ring.needs_rotation(rotated)
        assert CredentialCipher([new_key]).decrypt(rotated, context="c") == "v"

    def test_value_under_a_removed_key_names_that_key(self, old_key: str, new_key: str) -> None:
        stored = CredentialCipher([old_key]).encrypt("v", context="c")
        with pytest.raises(DecryptionError) as caught:
            CredentialCipher([new_key]).decrypt(stored, context="c")
        assert caught.value.key_id == key_id(old_key)
        assert "no configured key" in str(caught.value)

    def test_tampered_value_fails(self, new_key: str) -> None:
        cipher = CredentialCipher([new_key])
        stored = cipher.encrypt("v", context="c")
        tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
        with pytest.raises(DecryptionError, match="altered"):
            cipher.decrypt(tampered, context="c")
        with pytest.raises(DecryptionError, match="format"):
            cipher.decrypt("plaintext", context="c")

    def test_refuses_an_empty_or_malformed_ring(self) -> None:
        with pytest.raises(EncryptionKeyError, match="no encryption key"):
            CredentialCipher([])
        with pytest.raises(EncryptionKeyError, match="#2 is not a Fernet key"):
            CredentialCipher([Fernet.generate_key().decode(), "short"])
        key = Fernet.generate_key().decode()
        for glued in (f"{key};{key}", f"{key} {key}", f'"{key}"', key + "GARBAGE"):
            with pytest.raises(EncryptionKeyError):
                CredentialCipher([glued])

    def test_repr_shows_key_ids_only(self, new_key: str) -> None:
        cipher = CredentialCipher([new_key])
        assert new_key not in repr(cipher)
        assert key_id(new_key) in repr(cipher)
