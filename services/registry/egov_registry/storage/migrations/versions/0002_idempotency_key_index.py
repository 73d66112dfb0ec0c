"""Index idempotency keys by key alone: PostgreSQL used only the issuer column of the primary key
for a batch's ``key IN (...)`` lookup and read every key of the issuer.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idempotency_keys_idempotency_key", "idempotency_keys", ["idempotency_key"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_idempotency_key", table_name="idempotency_keys")
