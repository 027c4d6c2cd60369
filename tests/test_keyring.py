from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from miva_connect.crypto import CredentialCipher
from miva_connect.db.base import utcnow
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import head_revision, upgrade
from miva_connect.db.models import Merchant
from miva_connect.db.repositories import EncryptionCheckRepository, MerchantRepository
from miva_connect.health import CHECK_CONTEXT, Readiness
from miva_connect.keyring import rotate_credentials
from tests import canaries


@pytest.fixture
async def db(fresh_database_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, fresh_database_url)
    database = Database(create_engine(fresh_database_url))
    yield database
    await database.dispose()


async def seed(db: Database, cipher: CredentialCipher, count: int) -> dict[str, str]:
    """Merchants encrypted under the cipher's primary key; returns id -> api key."""
    keys: dict[str, str] = {}
    async with db.transaction() as tx:
        merchants = MerchantRepository(tx)
        for _ in range(count):
            merchant_id, api_key = str(uuid.uuid4()), canaries.api_key()
            keys[merchant_id] = api_key
            await merchants.insert_if_absent(
                {
                    "id": merchant_id,
                    "store_url": f"https://{merchant_id}.example/mm5/json.mvc",
                    "store_code": "S",
                    "store_code_key": "S",
                    "store_name": "",
                    "api_key_ciphertext": cipher.encrypt(
                        api_key, context=f"merchant:{merchant_id}:api_key"
                    ),
                    "signing_key_ciphertext": cipher.encrypt(
                        "", context=f"merchant:{merchant_id}:signing_key"
                    ),
                    "key_id": cipher.primary_key_id,
                    "verified_groups": [],
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                    "connected_at": utcnow(),
                }
            )
        await EncryptionCheckRepository(tx).add_if_absent(
            cipher.encrypt("ready", context=CHECK_CONTEXT)
        )
    return keys


async def test_rotation_moves_every_row_to_the_new_key_and_is_idempotent(db: Database) -> None:
    old, new = canaries.fernet_key(), canaries.fernet_key()
    keys = await seed(db, CredentialCipher([old]), 450)
    ring = CredentialCipher([new, old])
    report = await rotate_credentials(db, ring, batch_size=100)
    assert (report.rotated, report.failed) == (450, [])
    assert (await rotate_credentials(db, ring)).rotated == 0
    only_new = CredentialCipher([new])
    async with db.transaction() as tx:
        merchants = (await tx.scalars(select(Merchant))).all()
    assert {m.key_id for m in merchants} == {only_new.primary_key_id}
    for merchant in merchants:
        context = f"merchant:{merchant.id}:api_key"
        assert only_new.decrypt(merchant.api_key_ciphertext, context=context) == keys[merchant.id]
    assert await Readiness(db, only_new, head_revision("unused")).problems() == []


async def test_unreadable_rows_are_reported_and_skipped(db: Database) -> None:
    lost, old, new = canaries.fernet_key(), canaries.fernet_key(), canaries.fernet_key()
    await seed(db, CredentialCipher([old]), 3)
    orphans = await seed(db, CredentialCipher([lost]), 2)
    report = await rotate_credentials(db, CredentialCipher([new, old]))
    assert report.rotated == 3
    assert sorted(report.failed) == sorted(orphans)
