"""The statements of the signing hot path, compiled once per dialect and run on the driver's cursor.

Authorize and SignHash run a handful of fixed statements per call. SQLAlchemy's per-execution
work (building the statement, its cache key, parameter and result processing) cost several times
the statements themselves; their columns (text, integers, bytes) need no processing with either
driver (sqlite3, psycopg), so these are compiled once and executed on the DB-API cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from egov_keys.storage.tables import audit_head, audit_log, certificates, credentials, sads

__all__ = ["CERTIFICATE_COLUMNS", "CREDENTIAL_COLUMNS", "SAD_COLUMNS", "HotStatements", "Sql"]

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


class Sql:
    """One Core statement compiled for one dialect; run with a mapping of its parameters."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        self._positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Values written into the statement (``id == 1``, ``status == 'active'``) are bound
        # parameters too.
        self._literals = {k: v for k, v in compiled.params.items() if v is not None}

    def params(self, values: Mapping[str, Any]) -> Any:
        if self._literals:
            values = {**self._literals, **values}
        if self._positions is None:
            return values
        return tuple([values[name] for name in self._positions])

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> int:
        """Run it; the number of rows it changed."""
        cursor.execute(self.sql, self.params(values))
        return int(cursor.rowcount)

    def execute_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        if len(rows) == 1:
            cursor.execute(self.sql, self.params(rows[0]))
        else:
            cursor.executemany(self.sql, [self.params(row) for row in rows])

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor.execute(self.sql, self.params(values))
        return list(cursor.fetchall())


_ACTIVE = "active"  # CredentialStatus.ACTIVE (tables know no domain types)


class HotStatements:
    """Every statement of Authorize, SignHash, the audit append and the OCSP responder's
    lookup, for one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        by_id = credentials.c.credential_id == sa.bindparam("p_credential_id")
        self.credential = Sql(sa.select(*credentials.c).where(by_id), dialect)
        # The credential and the SAD in one round trip: the SAD found by its hash alone (it may
        # name another credential, which the caller reports as such).
        self.signing_state = Sql(
            sa.select(*credentials.c, *sads.c)
            .select_from(credentials.outerjoin(sads, sads.c.sad_hash == sa.bindparam("p_sad_hash")))
            .where(by_id),
            dialect,
        )
        self.insert_sad = Sql(sa.insert(sads), dialect)
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
        self.spend_sad = Sql(
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
        self.purge_sads = Sql(
            sa.delete(sads).where(sads.c.expires_at_us < sa.bindparam("p_before_us")), dialect
        )
        head = audit_head.c.id == 1
        # Locks the head row (a row lock in PostgreSQL; SQLite's write lock) and reads it.
        self.lock_head = Sql(
            sa.update(audit_head)
            .where(head)
            .values(sequence=audit_head.c.sequence)
            .returning(audit_head.c.sequence, audit_head.c.entry_hash),
            dialect,
        )
        self.set_head = Sql(
            sa.update(audit_head)
            .where(head)
            .values(sequence=sa.bindparam("p_sequence"), entry_hash=sa.bindparam("p_hash")),
            dialect,
        )
        # Moves the head only if it is still where this process last left it.
        self.advance_head = Sql(
            sa.update(audit_head)
            .where(
                head,
                audit_head.c.sequence == sa.bindparam("p_expected_sequence"),
                audit_head.c.entry_hash == sa.bindparam("p_expected_hash"),
            )
            .values(sequence=sa.bindparam("p_sequence"), entry_hash=sa.bindparam("p_hash")),
            dialect,
        )
        self.insert_audit = Sql(sa.insert(audit_log), dialect)
        self.certificate_status = Sql(
            sa.select(*(certificates.c[name] for name in CERTIFICATE_COLUMNS)).where(
                certificates.c.serial_hex == sa.bindparam("p_serial_hex"),
                certificates.c.issuer == sa.bindparam("p_issuer"),
            ),
            dialect,
        )
