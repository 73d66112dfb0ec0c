"""refresh_tokens.access_jti: the access token issued with each refresh token

Revoking a refresh token revokes its family, and now the access tokens issued with it too
(RFC 7009 section 2.1: the access tokens of the same grant), which identity refuses by this
``jti`` (indexed: every access token presented to identity is looked up). Refresh tokens issued
before have none: their access tokens expire within ``ACCESS_TOKEN_SECONDS`` anyway.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_jti", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_refresh_tokens_access_jti"), ["access_jti"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_access_jti"))
        batch_op.drop_column("access_jti")
