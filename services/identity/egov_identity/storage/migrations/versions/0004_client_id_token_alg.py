"""clients.id_token_signed_response_alg

A client chooses the algorithm of its ID tokens (OIDC Registration 1.0 section 2,
``id_token_signed_response_alg``): ES256 or RS256. Existing clients keep ES256, what they were
given so far.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_token_signed_response_alg", sa.String(length=8),
                                      nullable=False, server_default="ES256"))


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("id_token_signed_response_alg")
