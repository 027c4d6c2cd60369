"""Initial schema: channels, onboarding sessions, merchants, encryption check.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from miva_connect.db.base import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("redirect_url", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel")),
        sa.UniqueConstraint("slug", name=op.f("uq_channel_slug")),
    )
    op.create_table(
        "merchant",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("store_url", sa.String(2048), nullable=False),
        sa.Column("store_code", sa.String(64), nullable=False),
        sa.Column("store_code_key", sa.String(64), nullable=False),
        sa.Column("store_name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("api_key_ciphertext", sa.Text(), nullable=False),
        sa.Column("signing_key_ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("verified_groups", sa.JSON(), nullable=False),
        sa.Column("signature_enforced", sa.Boolean(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant")),
        sa.UniqueConstraint(
            "store_url", "store_code_key", name=op.f("uq_merchant_store_url_store_code_key")
        ),
    )
    op.create_table(
        "onboarding_session",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("store_url", sa.Text(), nullable=True),
        sa.Column("merchant_id", sa.String(36), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channel.id"],
            name=op.f("fk_onboarding_session_channel_id_channel"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchant.id"],
            name=op.f("fk_onboarding_session_merchant_id_merchant"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_onboarding_session_token_hash")),
    )
    op.create_table(
        "channel_merchant",
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("merchant_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channel.id"],
            name=op.f("fk_channel_merchant_channel_id_channel"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchant.id"],
            name=op.f("fk_channel_merchant_merchant_id_merchant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "merchant_id", name=op.f("pk_channel_merchant")),
    )
    op.create_table(
        "encryption_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_check")),
    )


def downgrade() -> None:
    op.drop_table("encryption_check")
    op.drop_table("channel_merchant")
    op.drop_table("onboarding_session")
    op.drop_table("merchant")
    op.drop_table("channel")
