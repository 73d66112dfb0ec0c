"""Documents, status history, idempotency keys, reservations and the Merkle log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_head"),
    )
    op.bulk_insert(log_head, [{"id": 1, "tree_size": 0}])
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_log_nodes"),
    )
    op.create_table(
        "log_leaves",
        sa.Column("leaf_index", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("leaf_data", sa.LargeBinary, nullable=False),
        sa.Column("appended_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_log_leaves"),
    )
    op.create_index("ix_log_leaves_document_id", "log_leaves", ["document_id"])
    op.create_table(
        "documents",
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("issuer", sa.String(40), nullable=False),
        sa.Column("document_type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("signer_certificate_sha256", sa.LargeBinary, nullable=False),
        sa.Column("valid_from_ms", sa.BigInteger, nullable=False),
        sa.Column("valid_until_ms", sa.BigInteger, nullable=True),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger, nullable=False),
        sa.Column("supersedes", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_documents"),
        sa.UniqueConstraint("issuer", "sha256", name="uq_documents_issuer_sha256"),
    )
    op.create_index("ix_documents_sha256", "documents", ["sha256"])
    for name, columns in (
        ("ix_documents_registered", []),
        ("ix_documents_issuer_registered", ["issuer"]),
        ("ix_documents_type_registered", ["document_type"]),
        ("ix_documents_subject_registered", ["subject"]),
        ("ix_documents_status_registered", ["status"]),
    ):
        op.create_index(name, "documents", [*columns, "registered_at_ms", "document_id"])
    op.create_table(
        "status_changes",
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("changed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("reason_text", sa.Text, nullable=False),
        sa.Column("superseded_by", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "seq", name="pk_status_changes"),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.document_id"],
            name="fk_status_changes_document_id_documents",
        ),
        sa.UniqueConstraint("leaf_index", name="uq_status_changes_leaf_index"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("issuer", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "idempotency_key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.document_id"],
            name="fk_idempotency_keys_document_id_documents",
        ),
    )
    op.create_table(
        "reservations",
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("issuer", sa.String(40), nullable=False),
        sa.Column("document_type", sa.String(64), nullable=False),
        sa.Column("reserved_by", sa.String(200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_reservations"),
    )
    op.create_index("ix_reservations_expires_at_ms", "reservations", ["expires_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_reservations_expires_at_ms", table_name="reservations")
    op.drop_table("reservations")
    op.drop_table("idempotency_keys")
    op.drop_table("status_changes")
    for name in (
        "ix_documents_status_registered",
        "ix_documents_subject_registered",
        "ix_documents_type_registered",
        "ix_documents_issuer_registered",
        "ix_documents_registered",
        "ix_documents_sha256",
    ):
        op.drop_index(name, table_name="documents")
    op.drop_table("documents")
    op.drop_index("ix_log_leaves_document_id", table_name="log_leaves")
    op.drop_table("log_leaves")
    op.drop_table("log_nodes")
    op.drop_table("log_head")
