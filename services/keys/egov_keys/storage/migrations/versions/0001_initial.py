"""Keys schema v1: authorities, certificates, credentials, SADs, audit chain, CRLs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authorities",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False, unique=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary, nullable=False),
        sa.Column("key_blob", sa.LargeBinary, nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revocation_epoch", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "certificates",
        sa.Column("serial_hex", sa.String(48), primary_key=True),
        sa.Column("issuer", sa.String(64), nullable=False, index=True),
        sa.Column("credential_id", sa.String(64), nullable=True),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("not_after_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
    )
    op.create_table(
        "credentials",
        sa.Column("credential_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False, unique=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary, nullable=False),
        sa.Column("key_blob", sa.LargeBinary, nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("certificate_serial", sa.String(48), nullable=False, unique=True),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("not_before_us", sa.BigInteger, nullable=False),
        sa.Column("not_after_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("max_signatures", sa.Integer, nullable=False),
        sa.Column("renewed_from", sa.String(64), nullable=False, server_default=""),
        sa.Column("renewed_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
    )
    op.create_table(
        "sads",
        sa.Column("sad_hash", sa.String(64), primary_key=True),
        sa.Column("credential_id", sa.String(64), nullable=False),
        sa.Column("hash_algorithm", sa.String(16), nullable=False),
        sa.Column("hashes_binding", sa.String(64), nullable=False),
        sa.Column("num_signatures", sa.Integer, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False, index=True),
        sa.Column("spent_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("credential_id", sa.String(64), nullable=False, index=True),
        sa.Column("outcome", sa.String(96), nullable=False),
        sa.Column("details_json", sa.Text, nullable=False),
        sa.Column("previous_hash", sa.LargeBinary, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
    )
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(audit_head, [{"id": 1, "sequence": 0, "entry_hash": bytes(32)}])
    op.create_table(
        "crls",
        sa.Column("issuer", sa.String(64), primary_key=True),
        sa.Column("crl_number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("revocation_epoch", sa.BigInteger, nullable=False),
        sa.Column("this_update_us", sa.BigInteger, nullable=False),
        sa.Column("next_update_us", sa.BigInteger, nullable=False),
        sa.Column("crl_der", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "crls",
        "audit_head",
        "audit_log",
        "sads",
        "credentials",
        "certificates",
        "authorities",
    ):
        op.drop_table(table)
