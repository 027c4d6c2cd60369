"""Index the foreign keys that lookups and cascades use.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_onboarding_session_channel_id"), "onboarding_session", ["channel_id"])
    op.create_index(
        op.f("ix_onboarding_session_merchant_id"), "onboarding_session", ["merchant_id"]
    )
    op.create_index(op.f("ix_channel_merchant_merchant_id"), "channel_merchant", ["merchant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_channel_merchant_merchant_id"), table_name="channel_merchant")
    op.drop_index(op.f("ix_onboarding_session_merchant_id"), table_name="onboarding_session")
    op.drop_index(op.f("ix_onboarding_session_channel_id"), table_name="onboarding_session")
