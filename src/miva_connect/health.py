"""Readiness: the database answers, its schema is at head, and the key ring opens stored data."""

from __future__ import annotations

import asyncio

import structlog

from miva_connect.crypto import CredentialCipher, DecryptionError
from miva_connect.db.engine import Database
from miva_connect.db.migrations import schema_revision
from miva_connect.db.repositories import EncryptionCheckRepository

log = structlog.get_logger(__name__)

CHECK_CONTEXT = "encryption-check"
CHECK_TIMEOUT_SECONDS = 2.0


class Readiness:
    def __init__(self, db: Database, cipher: CredentialCipher, head: str | None) -> None:
        self._db = db
        self._cipher = cipher
        self._head = head

    async def problems(self) -> list[str]:
        """Empty when ready; otherwise one line per problem, safe to show to ops."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                return await self._check()
        except TimeoutError:
            return ["database did not answer in time"]
        except DecryptionError as error:
            log.error("readiness.decrypt_failed", key_id=error.key_id, reason=error.reason)
            return [f"encryption keys cannot decrypt stored data: {error}"]
        except Exception as error:  # any driver error means "not ready", with its kind only
            log.warning("readiness.database_failed", error=type(error).__name__)
            return [f"database unreachable ({type(error).__name__})"]

    async def _check(self) -> list[str]:
        # One connection and no transaction: probes come often, and each round trip counts.
        async with self._db.read() as reader:
            revision = await schema_revision(reader)
            if revision != self._head:
                return [f"database schema is at {revision or 'nothing'}, expected {self._head}"]
            ciphertext = await EncryptionCheckRepository(reader).ciphertext()
        if ciphertext is None:
            # First start on this database: seal a value the next checks must open.
            sealed = self._cipher.encrypt("ready", context=CHECK_CONTEXT)
            async with self._db.transaction() as tx:
                await EncryptionCheckRepository(tx).add_if_absent(sealed)
            return []
        self._cipher.decrypt(ciphertext, context=CHECK_CONTEXT)
        return []
