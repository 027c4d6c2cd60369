"""Key rotation: re-encrypt stored credentials under the primary key, in small batches.

Idempotent and resumable: each row records the id of the key that encrypted it, so a
second run finds nothing to do, and a run stopped half-way continues where it was.
Rows that no configured key opens are reported by id and skipped, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from miva_connect.crypto import CredentialCipher, DecryptionError
from miva_connect.db.base import utcnow
from miva_connect.db.engine import Database
from miva_connect.db.repositories import EncryptionCheckRepository, MerchantRepository
from miva_connect.health import CHECK_CONTEXT

log = structlog.get_logger(__name__)

BATCH_SIZE = 200
SECRET_FIELDS = ("api_key", "signing_key")


@dataclass
class RotationReport:
    rotated: int = 0
    failed: list[str] = field(default_factory=list)


async def rotate_credentials(
    db: Database, cipher: CredentialCipher, batch_size: int = BATCH_SIZE
) -> RotationReport:
    """Re-encrypt every merchant not yet under the primary key, and the readiness value."""
    report = RotationReport()
    after = ""
    while True:
        async with db.transaction() as tx:
            merchants = MerchantRepository(tx)
            batch = await merchants.needing_rotation(cipher.primary_key_id, after, batch_size)
            for merchant in batch:
                try:
                    values = {
                        f"{name}_ciphertext": cipher.rotate(
                            getattr(merchant, f"{name}_ciphertext"),
                            context=f"merchant:{merchant.id}:{name}",
                        )
                        for name in SECRET_FIELDS
                    }
                except DecryptionError as error:
                    log.error("keys.rotate.failed", merchant_id=merchant.id, reason=error.reason)
                    report.failed.append(merchant.id)
                    continue
                await merchants.update(
                    merchant.id, {**values, "key_id": cipher.primary_key_id, "updated_at": utcnow()}
                )
                report.rotated += 1
        if len(batch) < batch_size:
            break
        after = batch[-1].id
    await _rotate_check_value(db, cipher)
    log.info("keys.rotated", rotated=report.rotated, failed=len(report.failed))
    return report


async def _rotate_check_value(db: Database, cipher: CredentialCipher) -> None:
    async with db.transaction() as tx:
        checks = EncryptionCheckRepository(tx)
        ciphertext = await checks.ciphertext()
        if ciphertext is not None and cipher.needs_rotation(ciphertext):
            await checks.replace(cipher.rotate(ciphertext, context=CHECK_CONTEXT))
