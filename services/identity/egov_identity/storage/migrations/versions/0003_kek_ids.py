"""KEK ids beside sealed values; service_secrets

Every sealed value now records which KEK sealed it, so the KEK can rotate (see
``domain/secrets_box.py``): blobs written from now on carry the KEK id in their header (version
2), and the new ``*_kek_id`` columns repeat it so ``rewrap-kek`` and the start-up check can find
values under other KEKs with an index instead of opening every row.

Existing rows keep their version 1 blobs and get NULL ids: the migration runs without the KEK, so
it cannot tell which KEK sealed them. They stay readable (every KEK given is tried; the GCM tag
decides), and ``python -m egov_identity rewrap-kek`` re-seals them as version 2 under the current
KEK. Downgrading drops the columns but not the version 2 blobs, which code before 0003 cannot
open: downgrade only together with the code, and only if nothing was sealed since.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_kek_id", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_persons_totp_kek_id"), ["totp_kek_id"],
                              unique=False)
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private_key_kek_id", sa.String(length=16),
                                      nullable=True))
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value_enc", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("private_key_kek_id")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persons_totp_kek_id"))
        batch_op.drop_column("totp_kek_id")
