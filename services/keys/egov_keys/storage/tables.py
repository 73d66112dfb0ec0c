"""Table definitions. Times are integer microseconds since the epoch (UTC) on every backend."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

authorities = sa.Table(
    "authorities",
    metadata,
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
    # Bumped by every revocation of a certificate this authority issued: CRL cache key.
    sa.Column("revocation_epoch", sa.BigInteger, nullable=False, server_default="0"),
)

certificates = sa.Table(
    "certificates",
    metadata,
    # Hex serial; the primary key makes serials unique across every process on the database.
    sa.Column("serial_hex", sa.String(48), primary_key=True),
    sa.Column("issuer", sa.String(64), nullable=False, index=True),
    sa.Column("credential_id", sa.String(64), nullable=True),
    sa.Column("certificate_der", sa.LargeBinary, nullable=False),
    sa.Column("not_after_us", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    sa.Column("revocation_reason", sa.String(32), nullable=True),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("credential_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key_id", sa.String(128), nullable=False, unique=True),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("public_key_der", sa.LargeBinary, nullable=False),
    # AES-GCM ciphertext (software) or a PKCS#11-wrapped key: never a private key in clear.
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

sads = sa.Table(
    "sads",
    metadata,
    # SHA-256 of the SAD: a copy of the database does not yield usable SADs.
    sa.Column("sad_hash", sa.String(64), primary_key=True),
    sa.Column("credential_id", sa.String(64), nullable=False),
    sa.Column("hash_algorithm", sa.String(16), nullable=False),
    sa.Column("hashes_binding", sa.String(64), nullable=False),
    sa.Column("num_signatures", sa.Integer, nullable=False),
    sa.Column("expires_at_us", sa.BigInteger, nullable=False, index=True),
    sa.Column("spent_at_us", sa.BigInteger, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
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

# One row (id = 1): the tip of the chain. Every append updates it first, which serialises
# appends in the database (a row lock in PostgreSQL, the write lock in SQLite).
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("entry_hash", sa.LargeBinary, nullable=False),
)

crls = sa.Table(
    "crls",
    metadata,
    sa.Column("issuer", sa.String(64), primary_key=True),
    sa.Column("crl_number", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("revocation_epoch", sa.BigInteger, nullable=False),
    sa.Column("this_update_us", sa.BigInteger, nullable=False),
    sa.Column("next_update_us", sa.BigInteger, nullable=False),
    sa.Column("crl_der", sa.LargeBinary, nullable=False),
)
