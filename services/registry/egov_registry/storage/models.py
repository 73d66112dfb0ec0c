"""Tables of the registry. Times are Unix milliseconds (BIGINT): one meaning on every backend.

Only ``documents.status``/``superseded_by``/``supersedes`` change after insert, and each change
is also an appended ``status_changes`` row and log leaf; the log tables are append-only.

Every B-tree a registration touches is a page SQLite writes to its WAL at commit, inside the
write turn, so the tables keep none they do not need (revision 0003): on SQLite ``log_nodes``,
``status_changes`` and ``idempotency_keys`` are ``WITHOUT ROWID`` (the key is the table; their
rows are small), ``leaf_index`` is the rowid, and each lookup path has one index, leading with
the column it looks up. ``documents`` keeps its rowid: its rows are large, and its key random.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )


class LogHead(Base):
    """One row (id 1): the log's size. Every append locks it first, serialising appends across
    processes (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite)."""

    __tablename__ = "log_head"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


#: SQLite keeps the row in its primary key's B-tree, with no rowid table beside it.
_NO_ROWID = {"sqlite_with_rowid": False}


class LogNode(Base):
    """Hash of complete subtree ``level``/``idx``: leaves ``[idx*2^level, (idx+1)*2^level)``."""

    __tablename__ = "log_nodes"
    __table_args__ = _NO_ROWID
    level: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False)


class LogLeaf(Base):
    """The exact bytes of each leaf (RFC 9162 leaf input). A document's leaves are found by its
    ``status_changes`` (one per leaf), so ``document_id`` has no index here."""

    __tablename__ = "log_leaves"
    # INTEGER on SQLite: the rowid itself (64-bit there), not a key index beside it.
    leaf_index: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    )
    document_id: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    event_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    leaf_data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    appended_at_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # Serves lookups by digest alone too (LookupByHash, the duplicate check).
        sa.UniqueConstraint("sha256", "issuer"),
        sa.Index("ix_documents_registered", "registered_at_ms", "document_id"),
        sa.Index("ix_documents_issuer_registered", "issuer", "registered_at_ms", "document_id"),
        sa.Index(
            "ix_documents_type_registered", "document_type", "registered_at_ms", "document_id"
        ),
        sa.Index("ix_documents_subject_registered", "subject", "registered_at_ms", "document_id"),
        sa.Index("ix_documents_status_registered", "status", "registered_at_ms", "document_id"),
    )
    document_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    sha256: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False)
    issuer: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    document_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    signer_certificate_sha256: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    valid_from_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    valid_until_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    metadata_json: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    registered_at_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    supersedes: Mapped[str] = mapped_column(sa.String(40), nullable=False, default="")


class StatusChangeRow(Base):
    """Append-only history; ``seq`` 0 is the registration."""

    __tablename__ = "status_changes"
    __table_args__ = _NO_ROWID
    document_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("documents.document_id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    changed_at_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    leaf_index: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, unique=True)
    actor: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    reason: Mapped[str] = mapped_column(sa.String(32), nullable=False, default="")
    reason_text: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    superseded_by: Mapped[str] = mapped_column(sa.String(40), nullable=False, default="")


class IdempotencyKey(Base):
    """A registration's idempotency key, scoped to the issuer, and what it asked for. The key
    leads the primary key: a batch's keys are looked up by key alone."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.PrimaryKeyConstraint("idempotency_key", "issuer"), _NO_ROWID)
    issuer: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(sa.LargeBinary(32), nullable=False)
    document_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("documents.document_id"), nullable=False
    )


class ReservationRow(Base):
    __tablename__ = "reservations"
    document_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    issuer: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    document_type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    reserved_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    expires_at_ms: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)
