"""The statements of the signing hot path, compiled once per dialect and run on the driver's cursor.

Authorize and SignHash run a handful of fixed statements per call. SQLAlchemy's per-execution
work (building the statement, its cache key, parameter and result processing) cost several times
the statements themselves; their columns (text, integers, bytes) need no processing with either
driver (sqlite3, psycopg), so these are compiled once and executed on the DB-API cursor.
"""

from __future__ import annotations

import sqlalchemy as sa
from egov_common.db import CompiledStatement

from egov_keys.storage.tables import audit_head, audit_log, certificates, credentials, sads

__all__ = ["CERTIFICATE_COLUMNS", "CREDENTIAL_COLUMNS", "SAD_COLUMNS", "HotStatements"]

#: Column order of the credential part of a row (``credential``, ``signing_state``).
CREDENTIAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in credentials.c)
#: Column order of the SAD part of a ``signing_state`` row (after the credential's columns).
SAD_COLUMNS: tuple[str, ...] = tuple(c.name for c in sads.c)
#: Column order of a ``certificate_status`` row.
CERTIFICATE_COLUMNS: tuple[str, ...] = (
    "serial_hex",
    "issuer",
    "status",
    "revoked_at_us",
    "revocation_reason",
)


_ACTIVE = "active"  # CredentialStatus.ACTIVE (tables know no domain types)


class HotStatements:
    """Every statement of Authorize, SignHash, the audit append and the OCSP responder's
    lookup, for one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        by_id = credentials.c.credential_id == sa.bindparam("p_credential_id")
        self.credential = CompiledStatement(sa.select(*credentials.c).where(by_id), dialect)
        # The credential and the SAD in one round trip: the SAD found by its hash alone (it may
        # name another credential, which the caller reports as such).
        self.signing_state = CompiledStatement(
            sa.select(*credentials.c, *sads.c)
            .select_from(credentials.outerjoin(sads, sads.c.sad_hash == sa.bindparam("p_sad_hash")))
            .where(by_id),
            dialect,
        )
        self.insert_sad = CompiledStatement(sa.insert(sads), dialect)
        still_active = (
            sa.select(credentials.c.credential_id)
            .where(
                credentials.c.credential_id == sads.c.credential_id,
                credentials.c.status == _ACTIVE,
            )
            .exists()
        )
        # The spend: conditional on the SAD being unspent and unexpired and its credential still
        # active, all in the database; exactly one caller changes the row.
        self.spend_sad = CompiledStatement(
            sa.update(sads)
            .where(
                sads.c.sad_hash == sa.bindparam("p_sad_hash"),
                sads.c.spent_at_us.is_(None),
                sads.c.expires_at_us > sa.bindparam("p_now_us"),
                still_active,
            )
            .values(spent_at_us=sa.bindparam("p_now_us")),
            dialect,
        )
        self.purge_sads = CompiledStatement(
            sa.delete(sads).where(sads.c.expires_at_us < sa.bindparam("p_before_us")), dialect
        )
        head = audit_head.c.id == 1
        # Locks the head row (a row lock in PostgreSQL; SQLite's write lock) and reads it.
        self.lock_head = CompiledStatement(
            sa.update(audit_head)
            .where(head)
            .values(sequence=audit_head.c.sequence)
            .returning(audit_head.c.sequence, audit_head.c.entry_hash),
            dialect,
        )
        self.set_head = CompiledStatement(
            sa.update(audit_head)
            .where(head)
            .values(sequence=sa.bindparam("p_sequence"), entry_hash=sa.bindparam("p_hash")),
            dialect,
        )
        # Moves the head only if it is still where this process last left it.
        self.advance_head = CompiledStatement(
            sa.update(audit_head)
            .where(
                head,
                audit_head.c.sequence == sa.bindparam("p_expected_sequence"),
                audit_head.c.entry_hash == sa.bindparam("p_expected_hash"),
            )
            .values(sequence=sa.bindparam("p_sequence"), entry_hash=sa.bindparam("p_hash")),
            dialect,
        )
        self.insert_audit = CompiledStatement(sa.insert(audit_log), dialect)
        self.certificate_status = CompiledStatement(
            sa.select(*(certificates.c[name] for name in CERTIFICATE_COLUMNS)).where(
                certificates.c.serial_hex == sa.bindparam("p_serial_hex"),
                certificates.c.issuer == sa.bindparam("p_issuer"),
            ),
            dialect,
        )
