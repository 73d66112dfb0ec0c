"""Fewer B-trees per registration: no index nothing reads, no rowid table beside a key.

A registration's commit writes one page to the WAL for every B-tree it touches, inside the
write turn that every other writer waits for; on SQLite each page is two ``pwrite`` calls. This
revision takes a registration committed alone from 29 pages to about 21:

- ``ix_documents_sha256`` goes: the issuer/digest unique constraint now leads with the digest,
  so it serves lookups by digest alone;
- ``ix_idempotency_keys_idempotency_key`` goes: the primary key now leads with the key;
- ``ix_log_leaves_document_id`` goes: nothing reads it (a document's leaves are found by its
  ``status_changes``, one per leaf);
- on SQLite, ``log_nodes``, ``status_changes`` and ``idempotency_keys`` become ``WITHOUT ROWID``
  tables (the primary key's B-tree holds the row) and ``log_leaves.leaf_index`` becomes the
  rowid (``INTEGER``). SQLite changes such tables only by building them anew (Alembic's batch
  mode), which ``egov_common.db.upgrade_to_head`` runs in one transaction with foreign keys
  checked once at its end.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KEYS_PK = "pk_idempotency_keys"
_OLD_UNIQUE = ("uq_documents_issuer_sha256", ["issuer", "sha256"])
_NEW_UNIQUE = ("uq_documents_sha256_issuer", ["sha256", "issuer"])


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _rebuild(table: str, *, with_rowid: bool) -> Any:
    """A batch that builds ``table`` anew on SQLite (its rows copied), with or without rowid."""
    return op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
    )


def upgrade() -> None:
    if not _sqlite():
        op.drop_index("ix_log_leaves_document_id", table_name="log_leaves")
        op.drop_constraint(_KEYS_PK, "idempotency_keys", type_="primary")
        op.create_primary_key(_KEYS_PK, "idempotency_keys", ["idempotency_key", "issuer"])
        op.drop_index("ix_idempotency_keys_idempotency_key", table_name="idempotency_keys")
        op.drop_constraint(_OLD_UNIQUE[0], "documents", type_="unique")
        op.create_unique_constraint(_NEW_UNIQUE[0], "documents", _NEW_UNIQUE[1])
        op.drop_index("ix_documents_sha256", table_name="documents")
        return
    with _rebuild("log_nodes", with_rowid=False):
        pass
    with _rebuild("log_leaves", with_rowid=True) as batch:
        batch.drop_index("ix_log_leaves_document_id")
        batch.alter_column("leaf_index", type_=sa.Integer, existing_type=sa.BigInteger)
    with _rebuild("status_changes", with_rowid=False):
        pass
    with _rebuild("idempotency_keys", with_rowid=False) as batch:
        batch.drop_index("ix_idempotency_keys_idempotency_key")
        batch.drop_constraint(_KEYS_PK, type_="primary")
        batch.create_primary_key(_KEYS_PK, ["idempotency_key", "issuer"])
    with _rebuild("documents", with_rowid=True) as batch:
        batch.drop_index("ix_documents_sha256")
        batch.drop_constraint(_OLD_UNIQUE[0], type_="unique")
        batch.create_unique_constraint(*_NEW_UNIQUE)


def downgrade() -> None:
    if not _sqlite():
        op.create_index("ix_documents_sha256", "documents", ["sha256"])
        op.drop_constraint(_NEW_UNIQUE[0], "documents", type_="unique")
        op.create_unique_constraint(_OLD_UNIQUE[0], "documents", _OLD_UNIQUE[1])
        op.create_index(
            "ix_idempotency_keys_idempotency_key", "idempotency_keys", ["idempotency_key"]
        )
        op.drop_constraint(_KEYS_PK, "idempotency_keys", type_="primary")
        op.create_primary_key(_KEYS_PK, "idempotency_keys", ["issuer", "idempotency_key"])
        op.create_index("ix_log_leaves_document_id", "log_leaves", ["document_id"])
        return
    with _rebuild("documents", with_rowid=True) as batch:
        batch.drop_constraint(_NEW_UNIQUE[0], type_="unique")
        batch.create_unique_constraint(*_OLD_UNIQUE)
        batch.create_index("ix_documents_sha256", ["sha256"])
    with _rebuild("idempotency_keys", with_rowid=True) as batch:
        batch.drop_constraint(_KEYS_PK, type_="primary")
        batch.create_primary_key(_KEYS_PK, ["issuer", "idempotency_key"])
        batch.create_index("ix_idempotency_keys_idempotency_key", ["idempotency_key"])
    with _rebuild("status_changes", with_rowid=True):
        pass
    with _rebuild("log_leaves", with_rowid=True) as batch:
        batch.alter_column("leaf_index", type_=sa.BigInteger, existing_type=sa.Integer)
        batch.create_index("ix_log_leaves_document_id", ["document_id"])
    with _rebuild("log_nodes", with_rowid=True):
        pass
