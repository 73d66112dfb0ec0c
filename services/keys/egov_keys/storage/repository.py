"""The keys repository: every write that matters is one transaction with its audit entry.

Every audit append moves the single ``audit_head`` row inside its transaction and holds it until
commit, so appends (and the operations they record) are serialised by the database itself: two
processes on one PostgreSQL database produce one linear chain.

Authorize and SignHash run precompiled statements on the driver's cursor
(:mod:`egov_keys.storage.statements`), and their writes in one process are group-committed: see
:class:`KeysRepository`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from egov_common.db import HotConnections, WriterTurn, make_engine, upgrade_to_head
from egov_common.forking import in_forked_children
from egov_common.group_commit import GroupCommit
from egov_pki.identifiers import parse_identifier
from sqlalchemy.engine import Connection, Engine

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm
from egov_keys.domain.audit import entry_hash
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole
from egov_keys.domain.model import (
    AuditEvent,
    AuditRecord,
    CertificateStatus,
    Credential,
    CredentialStatus,
    RevocationReason,
    SadRecord,
)
from egov_keys.domain.pki import OwnerKind
from egov_keys.storage.statements import (
    CERTIFICATE_COLUMNS,
    CREDENTIAL_COLUMNS,
    SAD_COLUMNS,
    HotStatements,
)
from egov_keys.storage.tables import (
    audit_head,
    audit_log,
    authorities,
    certificates,
    credentials,
    crls,
    sads,
)

__all__ = [
    "AuthorityRow",
    "CertificateRow",
    "CrlRow",
    "KeyTable",
    "KeysRepository",
    "StaleAuthority",
    "StaleCredential",
    "StoredKey",
    "migrate",
]

MIGRATIONS = "egov_keys.storage.migrations"

log = logging.getLogger("egov.keys.storage")

_T = TypeVar("_T")


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema."""
    upgrade_to_head(url, MIGRATIONS)


def to_us(when: dt.datetime) -> int:
    delta = when.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class AuthorityRow:
    name: str
    issuer: str
    key: KeyReference
    certificate_der: bytes
    revocation_epoch: int


@dataclass(frozen=True, slots=True)
class CertificateRow:
    serial: int
    issuer: str
    status: CertificateStatus
    revoked_at: dt.datetime | None
    reason: RevocationReason | None


@dataclass(frozen=True, slots=True)
class CrlRow:
    issuer: str
    number: int
    revocation_epoch: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


class KeyTable(enum.StrEnum):
    """The tables that hold key blobs."""

    AUTHORITIES = "authorities"
    CREDENTIALS = "credentials"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key blob where it is stored: ``row_id`` is the authority name or the credential id."""

    table: KeyTable
    row_id: str
    key: KeyReference


class KeysRepository:
    """Storage of the keys service.

    Within a process, writes take turns on one lock; the writes of Authorize and SignHash (and
    refusals' audit entries) that arrive while another is being committed are committed together
    in the next transaction (group commit): each keeps its own conditional SAD update and its own
    audit entry, so each succeeds or fails on its own terms, and a transaction that fails is
    retried one write at a time. Across processes the head row serialises appends as before.
    """

    def __init__(self, engine: Engine, hot_engine: Engine) -> None:
        self._engine = engine
        # The hot path's pool (see from_url): autocommit connections, explicit transactions.
        self._hot = hot_engine
        sqlite = hot_engine.dialect.name == "sqlite"
        # SQLite: take the write lock when the transaction starts, not at its first write.
        self._begin = "BEGIN IMMEDIATE" if sqlite else "BEGIN"
        # One writer at a time: this process's threads, and the processes on a SQLite file.
        self._turn = WriterTurn(hot_engine.url)
        self._statements: HotStatements | None = None
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._group: GroupCommit[_Write] = GroupCommit(
            self._run, turn=lambda: self._turn, failed=_Write.fail
        )
        # (sequence, entry hash) of the head as this process's last commit left it; the next
        # append moves it with one conditional UPDATE when no other process appended since.
        self._head: tuple[int, bytes] | None = None
        self._optimistic = True
        self._next_purge = 0.0
        self._cache_lock = threading.Lock()
        self._parsed: dict[str, tuple[tuple[Any, ...], Credential]] = {}
        # Hot-path connections kept checked out between calls (the pool's checkout and
        # check-in cost more than a statement).
        self._conns = HotConnections(hot_engine, keep=_IDLE_CONNECTIONS)
        # A worker forked by egov_common.server (EGOV_KEYS_PROCESSES > 1) must not use the
        # parent's pooled connections or locks: it drops them (without closing them under the
        # parent) and opens its own.
        in_forked_children(self, KeysRepository._after_fork)

    @classmethod
    def from_url(cls, url: str) -> KeysRepository:
        # The hot path's pool: no ping per checkout (a round trip per call on PostgreSQL; a
        # connection found dead is dropped and the call fails as retryable), and autocommit, so
        # a read leaves no transaction behind to roll back when the connection goes back to
        # the pool (another round trip, which also drops psycopg's prepared statements).
        hot = make_engine(
            url,
            pool_pre_ping=False,
            pool_size=10,
            max_overflow=10,
            isolation_level="AUTOCOMMIT",
        )
        return cls(make_engine(url), hot)

    def dispose(self) -> None:
        self._turn.close()
        self._conns.close()
        self._engine.dispose()

    def _after_fork(self) -> None:
        self._turn.after_fork()
        # The parent's connections are left alone: closing one here would end its session.
        self._conns.after_fork()
        self._engine.dispose(close=False)
        self._group.after_fork()
        self._cache_lock = threading.Lock()
        self._head = None

    def _sql(self) -> HotStatements:
        statements = self._statements
        if statements is None:
            # Compiled after the first connection, when the dialect knows the server (RETURNING).
            with self._hot.connect():
                pass
            statements = self._statements = HotStatements(self._hot.dialect)
        return statements

    # -- driver-level execution ----------------------------------------------------------------

    def _database_error(self, exc: Exception, statement: str) -> Exception:
        """A driver error as SQLAlchemy's exception of the same kind, without parameters."""
        if isinstance(exc, self._dbapi_error):
            return sa.exc.DBAPIError.instance(
                statement, None, exc, self._dbapi_error, hide_parameters=True
            )
        return exc

    def _read(self, work: Callable[[Any], _T]) -> _T:
        """``work(cursor)`` on a hot-path connection (``HotConnections.read``)."""
        try:
            return self._conns.read(work)
        except self._dbapi_error as exc:
            raise self._database_error(exc, "SELECT") from exc

    # -- audit -------------------------------------------------------------------------------

    def _append(
        self,
        cursor: Any,
        entries: Sequence[tuple[AuditEvent, dt.datetime]],
        head: tuple[int, bytes] | None = None,
    ) -> list[AuditRecord]:
        """Append ``entries`` to the chain inside the caller's transaction; the records written.

        With ``head`` (where this process last left the chain), one conditional UPDATE moves the
        head when no other process appended since; otherwise the head row is locked and read
        first. Either way the head row is held until the transaction ends, which serialises
        appends across processes.
        """
        if not entries:
            return []
        sql = self._sql()
        if head is not None:
            records = _chain(head, entries)
            moved = sql.advance_head.execute(
                cursor,
                {
                    "p_expected_sequence": head[0],
                    "p_expected_hash": head[1],
                    "p_sequence": records[-1].sequence,
                    "p_hash": records[-1].entry_hash,
                },
            )
            if moved == 1:
                sql.insert_audit.execute_many(cursor, [_audit_values(r) for r in records])
                return records
            self._optimistic = False
        (sequence, previous), *_ = sql.lock_head.rows(cursor, {})
        current = (int(sequence), bytes(previous))
        if head is None and current == self._head:
            self._optimistic = True  # nobody else appended since: try the short way again
        records = _chain(current, entries)
        sql.set_head.execute(
            cursor, {"p_sequence": records[-1].sequence, "p_hash": records[-1].entry_hash}
        )
        sql.insert_audit.execute_many(cursor, [_audit_values(r) for r in records])
        return records

    def _append_in(self, conn: Connection, event: AuditEvent, now: dt.datetime) -> AuditRecord:
        """:meth:`_append` inside a SQLAlchemy transaction (the rarer writes)."""
        self._head = None  # this transaction moves the head; its commit is not seen here
        cursor = conn.connection.cursor()
        try:
            return self._append(cursor, [(event, now)])[0]
        except self._dbapi_error as exc:
            raise self._database_error(exc, "INSERT INTO audit_log") from exc
        finally:
            cursor.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A SQLAlchemy transaction taking its turn with this process's other writes."""
        with self._turn, self._engine.begin() as conn:
            yield conn

    def append_audit(self, event: AuditEvent, now: dt.datetime) -> AuditRecord:
        job = self._submit(_Write(_AUDIT, event, now))
        assert job.record is not None
        return job.record

    # -- group commit ------------------------------------------------------------------------

    def _submit(self, job: _Write) -> _Write:
        self._group.submit(job)  # returns once committed with the writes queued meanwhile
        if job.error is not None:
            raise job.error
        return job

    def _run(self, batch: list[_Write]) -> None:
        """Commit a group (the group commit tries each write alone when this raises), then
        housekeeping."""
        self._commit(batch)
        self._purge_expired_sads(max(job.now for job in batch))

    def _commit(self, jobs: list[_Write]) -> None:
        """Write ``jobs`` in one transaction. A connection found dead before the transaction
        began (the database restarted) is replaced once: nothing was written on it."""
        try:
            self._commit_on(self._conns.lease(), jobs)
        except _DeadBeforeBegin as dead:
            self._commit_on(self._conns.lease(), jobs, retry_of=dead.__cause__)

    def _commit_on(
        self, connection: Any, jobs: list[_Write], retry_of: BaseException | None = None
    ) -> None:
        sql = self._sql()
        won = [False] * len(jobs)
        records: list[AuditRecord] = []
        clean = False
        statement = self._begin
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._begin)
                statement = "UPDATE sads"
                # Row locks in one order (inserts, then spends by SAD hash): two processes'
                # batches never wait on each other in a cycle.
                order = sorted(range(len(jobs)), key=lambda i: jobs[i].sort_key())
                for i in order:
                    job = jobs[i]
                    if job.kind == _SPEND:
                        assert job.sad is not None
                        spend = {"p_sad_hash": job.sad.sad_hash, "p_now_us": to_us(job.now)}
                        won[i] = sql.spend_sad.execute(cursor, spend) == 1
                    elif job.kind == _INSERT_SAD:
                        assert job.sad is not None
                        sql.insert_sad.execute(cursor, _sad_values(job.sad))
                        won[i] = True
                    else:
                        won[i] = True
                statement = "INSERT INTO audit_log"
                entries = [(job.event, job.now) for i, job in enumerate(jobs) if won[i]]
                head = self._head if self._optimistic else None
                records = self._append(cursor, entries, head)
                statement = "COMMIT"
                connection.commit()
            finally:
                cursor.close()
            clean = True
        except Exception as exc:
            self._head = None
            with contextlib.suppress(Exception):
                connection.rollback()
            dead = self._conns.drop_if_dead(connection, exc)
            if dead and statement == self._begin and retry_of is None:
                raise _DeadBeforeBegin() from exc
            if isinstance(exc, self._dbapi_error):
                raise self._database_error(exc, statement) from exc
            raise
        finally:
            self._conns.give_back(connection, clean=clean)
        if records:
            self._head = (records[-1].sequence, records[-1].entry_hash)
        audited = iter(records)
        for i, job in enumerate(jobs):
            job.won = won[i]
            if won[i]:
                job.record = next(audited)

    def _purge_expired_sads(self, now: dt.datetime) -> None:
        """Drop SADs expired for an hour, at most once a minute per process (housekeeping: a
        failure is logged and tried again later)."""
        tick = time.monotonic()
        if tick < self._next_purge:
            return
        self._next_purge = tick + 60.0
        before = to_us(now - dt.timedelta(hours=1))
        connection = self._hot.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                self._sql().purge_sads.execute(cursor, {"p_before_us": before})
            finally:
                cursor.close()
            connection.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                connection.rollback()
            log.warning("expired SADs could not be purged: %s", type(exc).__name__)
        finally:
            connection.close()

    def audit_head(self) -> tuple[int, bytes]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
        return int(row.sequence), bytes(row.entry_hash)

    def audit_records(
        self, *, after_sequence: int = 0, credential_id: str = "", limit: int | None = None
    ) -> list[AuditRecord]:
        query = sa.select(audit_log).where(audit_log.c.sequence > after_sequence)
        if credential_id:
            query = query.where(audit_log.c.credential_id == credential_id)
        query = query.order_by(audit_log.c.sequence)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_audit(row) for row in conn.execute(query)]

    @contextlib.contextmanager
    def audit_snapshot(
        self, batch: int = 1000
    ) -> Iterator[tuple[tuple[int, bytes], Iterator[AuditRecord]]]:
        """The head (sequence, entry hash) and every entry, read in one read-only transaction
        that sees a single snapshot of the database: appends committed meanwhile are in
        neither, so the entries end at that head unless someone tampered with the log. The
        entries are read ``batch`` at a time while the block runs.

        PostgreSQL: REPEATABLE READ, whose snapshot is taken at the first statement. SQLite (WAL):
        a read transaction sees the database as of its first read until it ends.
        """
        sqlite = self._hot.dialect.name == "sqlite"
        begin = "BEGIN" if sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        # An autocommit connection of the hot pool: the transaction is exactly ours.
        with self._hot.connect() as conn:
            conn.exec_driver_sql(begin)
            try:
                row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
                head = (int(row.sequence), bytes(row.entry_hash))

                def entries() -> Iterator[AuditRecord]:
                    after = 0
                    while True:
                        page = [
                            _audit(r)
                            for r in conn.execute(
                                sa.select(audit_log)
                                .where(audit_log.c.sequence > after)
                                .order_by(audit_log.c.sequence)
                                .limit(batch)
                            )
                        ]
                        yield from page
                        if len(page) < batch:
                            return
                        after = page[-1].sequence

                yield head, entries()
            finally:
                conn.exec_driver_sql("ROLLBACK")  # it read only

    # -- authorities ---------------------------------------------------------------------------

    def insert_authority(
        self,
        name: str,
        issuer: str,
        key: KeyReference,
        certificate_der: bytes,
        serial: int,
        not_after: dt.datetime,
        event: AuditEvent,
        now: dt.datetime,
    ) -> None:
        with self._transaction() as conn:
            self._append_in(conn, event, now)
            conn.execute(
                sa.insert(authorities).values(
                    name=name,
                    issuer=issuer,
                    key_id=key.key_id,
                    backend=key.backend.value,
                    algorithm=key.algorithm.value,
                    role=key.role.value,
                    public_key_der=key.public_key_der,
                    key_blob=key.blob,
                    certificate_der=certificate_der,
                    created_at_us=to_us(now),
                )
            )
            if name != issuer:
                conn.execute(
                    sa.insert(certificates).values(
                        serial_hex=f"{serial:x}",
                        issuer=issuer,
                        credential_id=None,
                        certificate_der=certificate_der,
                        not_after_us=to_us(not_after),
                        status=CertificateStatus.GOOD.value,
                    )
                )

    def authorities(self) -> dict[str, AuthorityRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(authorities)).all()
        return {
            row.name: AuthorityRow(
                row.name,
                row.issuer,
                KeyReference(
                    row.key_id,
                    CustodyBackend(row.backend),
                    KeyAlgorithm(row.algorithm),
                    KeyRole(row.role),
                    bytes(row.public_key_der),
                    bytes(row.key_blob),
                ),
                bytes(row.certificate_der),
                int(row.revocation_epoch),
            )
            for row in rows
        }

    def revoke_authority(
        self,
        issuer: str,
        serial: int,
        reason: RevocationReason,
        event: AuditEvent,
        now: dt.datetime,
    ) -> bool:
        """Revoke the certificate of an authority (issued by ``issuer``), with its audit entry
        and a new revocation epoch of ``issuer`` (its CRL is issued again), in one transaction.
        False when it was revoked already (nothing written)."""
        with self._transaction() as conn:
            if not _revoke_certificate_in(conn, issuer, serial, reason, now, authority=True):
                return False
            self._append_in(conn, event, now)
        return True

    def authority_certificates(self) -> dict[str, tuple[str, bool]]:
        """Hex serial -> (issuer as stored now, revoked?) of every certificate of an authority:
        a process that read an authority before bootstrap retired its issuer learns it here."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    certificates.c.issuer, certificates.c.serial_hex, certificates.c.status
                ).where(certificates.c.credential_id.is_(None))
            ).all()
        return {
            row.serial_hex: (row.issuer, row.status == CertificateStatus.REVOKED.value)
            for row in rows
        }

    def retire_authority(self, name: str, retired_name: str, event: AuditEvent, now: dt.datetime
                         ) -> None:
        """Keep a revoked authority's row under ``retired_name``, so that a new one can take
        ``name``. What it issued goes with it, in the same transaction: the certificates and
        credentials it issued, its CRLs and the authorities it certified (an issuing CA's OCSP
        signer) name ``retired_name`` as their issuer from then on, so that none of it is taken
        for the new authority's (its certificate row, which the issuer's CRL and OCSP answer
        from, stays as it is)."""
        with self._transaction() as conn:
            self._append_in(conn, event, now)
            conn.execute(
                sa.update(authorities).where(authorities.c.name == name).values(name=retired_name)
            )
            conn.execute(
                sa.update(authorities)
                .where(authorities.c.issuer == name, authorities.c.name != retired_name)
                .values(issuer=retired_name)
            )
            for table in (certificates, credentials, crls):
                conn.execute(
                    sa.update(table).where(table.c.issuer == name).values(issuer=retired_name)
                )

    def issuer_state(self, issuer: str) -> tuple[str, int] | None:
        """The key id of the authority named ``issuer`` and its revocation epoch; None while no
        authority has that name (bootstrap retired a revoked one and has not made its
        replacement yet)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(authorities.c.key_id, authorities.c.revocation_epoch).where(
                    authorities.c.name == issuer
                )
            ).one_or_none()
        return None if row is None else (str(row.key_id), int(row.revocation_epoch))

    # -- certificates, CRLs --------------------------------------------------------------------

    def certificate_status(self, issuer: str, serial: int) -> CertificateRow | None:
        sql = self._sql()
        rows = self._read(
            lambda cursor: sql.certificate_status.rows(
                cursor, {"p_serial_hex": f"{serial:x}", "p_issuer": issuer}
            )
        )
        return _certificate(dict(zip(CERTIFICATE_COLUMNS, rows[0], strict=True))) if rows else None

    def revoked_certificates(self, issuer: str) -> list[CertificateRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(certificates).where(
                    certificates.c.issuer == issuer,
                    certificates.c.status == CertificateStatus.REVOKED.value,
                )
            ).all()
        return [_certificate(row) for row in rows]

    def latest_crl(self, issuer: str) -> CrlRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(crls)
                .where(crls.c.issuer == issuer)
                .order_by(crls.c.crl_number.desc())
                .limit(1)
            ).one_or_none()
        if row is None:
            return None
        return CrlRow(
            row.issuer,
            int(row.crl_number),
            int(row.revocation_epoch),
            from_us(row.this_update_us),
            from_us(row.next_update_us),
            bytes(row.crl_der),
        )

    def highest_retired_crl_number(self, retired_prefix: str) -> int:
        """The highest CRL number the retired authorities whose names start with
        ``retired_prefix`` published (0 for none): a CA that replaced them under their name
        numbers its CRLs on from there."""
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(crls.c.crl_number)).where(
                    crls.c.issuer.startswith(retired_prefix, autoescape=True)
                )
            ).scalar_one_or_none()
        return int(value or 0)

    def store_crl(
        self, crl: CrlRow, issuer_key_id: str, event: AuditEvent, now: dt.datetime
    ) -> bool:
        """Store a CRL signed with ``issuer_key_id`` with its audit entry; False when another
        process stored this CRL number first (use theirs; nothing is audited). StaleAuthority
        when its issuer's name holds another key now (nothing written)."""
        try:
            with self._transaction() as conn:
                self._append_in(conn, event, now)
                _require_issuer_key_in(conn, crl.issuer, issuer_key_id)
                conn.execute(
                    sa.insert(crls).values(
                        issuer=crl.issuer,
                        crl_number=crl.number,
                        revocation_epoch=crl.revocation_epoch,
                        this_update_us=to_us(crl.this_update),
                        next_update_us=to_us(crl.next_update),
                        crl_der=crl.der,
                    )
                )
            return True
        except sa.exc.IntegrityError:
            return False

    # -- credentials ---------------------------------------------------------------------------

    def insert_credential(
        self,
        credential: Credential,
        idempotency_key: str,
        fingerprint: str,
        event: AuditEvent,
        now: dt.datetime,
        *,
        issuer_key_id: str,
        renews: str = "",
    ) -> None:
        """Store a new credential and its certificate, signed with ``issuer_key_id``; with
        ``renews``, mark that one RENEWED.

        Raises ``sqlalchemy.exc.IntegrityError`` when the idempotency key or the serial is taken,
        StaleAuthority when the issuer's name holds another key now (nothing written).
        """
        with self._transaction() as conn:
            self._append_in(conn, event, now)
            _require_issuer_key_in(conn, credential.issuer, issuer_key_id)
            conn.execute(
                sa.insert(credentials).values(
                    **_credential_values(credential),
                    idempotency_key=idempotency_key or None,
                    request_fingerprint=fingerprint or None,
                )
            )
            conn.execute(
                sa.insert(certificates).values(
                    serial_hex=f"{credential.certificate_serial:x}",
                    issuer=credential.issuer,
                    credential_id=credential.credential_id,
                    certificate_der=credential.certificate_der,
                    not_after_us=to_us(credential.not_after),
                    status=CertificateStatus.GOOD.value,
                )
            )
            if renews:
                done = conn.execute(
                    sa.update(credentials)
                    .where(
                        credentials.c.credential_id == renews,
                        credentials.c.status == CredentialStatus.ACTIVE.value,
                    )
                    .values(
                        status=CredentialStatus.RENEWED.value, renewed_by=credential.credential_id
                    )
                )
                if done.rowcount != 1:
                    raise StaleCredential(renews)

    def credential_by_idempotency_key(self, key: str) -> tuple[Credential, str] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(credentials).where(credentials.c.idempotency_key == key)
            ).one_or_none()
        if row is None:
            return None
        return _credential(row), row.request_fingerprint or ""

    def credential(self, credential_id: str) -> Credential | None:
        sql = self._sql()
        rows = self._read(
            lambda cursor: sql.credential.rows(cursor, {"p_credential_id": credential_id})
        )
        return self._parsed_credential(tuple(rows[0])) if rows else None

    def _parsed_credential(self, row: tuple[Any, ...]) -> Credential:
        """The Credential of a row, parsed once while the row stays the same (status changes,
        revocation and renewal change the row)."""
        key = str(row[0])
        with self._cache_lock:
            cached = self._parsed.get(key)
        if cached is not None and cached[0] == row:
            return cached[1]
        credential = _credential(dict(zip(CREDENTIAL_COLUMNS, row, strict=True)))
        with self._cache_lock:
            if len(self._parsed) >= _PARSED_CREDENTIALS:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[key] = (row, credential)
        return credential

    def list_credentials(
        self, owner: str, status: CredentialStatus | None, after_id: str, limit: int
    ) -> list[Credential]:
        query = sa.select(credentials).where(
            credentials.c.owner == owner, credentials.c.credential_id > after_id
        )
        if status is not None:
            query = query.where(credentials.c.status == status.value)
        query = query.order_by(credentials.c.credential_id).limit(limit)
        with self._engine.connect() as conn:
            return [_credential(row) for row in conn.execute(query)]

    def revoke_credential(
        self,
        credential: Credential,
        reason: RevocationReason,
        event: AuditEvent,
        now: dt.datetime,
    ) -> bool:
        """False when the credential was revoked meanwhile (nothing written)."""
        with self._transaction() as conn:
            self._append_in(conn, event, now)
            done = conn.execute(
                sa.update(credentials)
                .where(
                    credentials.c.credential_id == credential.credential_id,
                    credentials.c.status != CredentialStatus.REVOKED.value,
                )
                .values(
                    status=CredentialStatus.REVOKED.value,
                    revoked_at_us=to_us(now),
                    revocation_reason=reason.value,
                )
            )
            if done.rowcount != 1:
                raise StaleCredential(credential.credential_id)
            _revoke_certificate_in(
                conn, credential.issuer, credential.certificate_serial, reason, now
            )
        return True

    # -- SADs ----------------------------------------------------------------------------------

    def insert_sad(self, sad: SadRecord, event: AuditEvent, now: dt.datetime) -> None:
        """Store a new SAD (its hash) with its audit entry, in one transaction."""
        self._submit(_Write(_INSERT_SAD, event, now, sad))

    def sad(self, sad_hash: str) -> SadRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(sads).where(sads.c.sad_hash == sad_hash)).one_or_none()
        if row is None:
            return None
        return _sad(tuple(row))

    def signing_state(
        self, credential_id: str, sad_hash: str
    ) -> tuple[Credential | None, SadRecord | None]:
        """The credential and the SAD with that hash (whichever credential it names), read in
        one round trip."""
        sql = self._sql()
        rows = self._read(
            lambda cursor: sql.signing_state.rows(
                cursor, {"p_credential_id": credential_id, "p_sad_hash": sad_hash}
            )
        )
        if not rows:
            return None, None
        row = tuple(rows[0])
        n = len(CREDENTIAL_COLUMNS)
        record = _sad(row[n:]) if row[n] is not None else None
        return self._parsed_credential(row[:n]), record

    def spend_sad(self, sad: SadRecord, event: AuditEvent, now: dt.datetime) -> bool:
        """Atomically mark the SAD spent and audit it; False when it was spent or expired
        meanwhile (another call or another process won) or its credential is no longer active
        (revoked or renewed between the caller's check and this write): nothing is written then.
        """
        return self._submit(_Write(_SPEND, event, now, sad)).won

    # -- key blobs (KEK rotation) --------------------------------------------------------------

    def software_keys(self, table: KeyTable, after: str, limit: int) -> list[StoredKey]:
        """Up to ``limit`` software-custody keys of ``table`` whose row id sorts after ``after``
        (keyset pages: pass the last row id of the previous page)."""
        t = authorities if table is KeyTable.AUTHORITIES else credentials
        pk = t.c.name if table is KeyTable.AUTHORITIES else t.c.credential_id
        role = t.c.role if table is KeyTable.AUTHORITIES else sa.literal(KeyRole.OWNER.value)
        query = (
            sa.select(
                pk.label("row_id"),
                t.c.key_id,
                t.c.algorithm,
                role.label("role"),
                t.c.public_key_der,
                t.c.key_blob,
            )
            .where(t.c.backend == CustodyBackend.SOFTWARE.value, pk > after)
            .order_by(pk)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredKey(
                table,
                str(row.row_id),
                KeyReference(
                    str(row.key_id),
                    CustodyBackend.SOFTWARE,
                    KeyAlgorithm(row.algorithm),
                    KeyRole(row.role),
                    bytes(row.public_key_der),
                    bytes(row.key_blob),
                ),
            )
            for row in rows
        ]

    def replace_key_blobs(
        self,
        table: KeyTable,
        changes: Sequence[tuple[StoredKey, bytes]],
        audit: Callable[[list[StoredKey]], AuditEvent | None],
        now: dt.datetime,
    ) -> list[StoredKey]:
        """Swap each stored blob for its new one, in one transaction with the audit entry that
        ``audit`` makes of the keys actually swapped (None: no entry).

        A blob is swapped only if it is still the one that was read (compare-and-set on the
        blob), so a concurrent run, or a key that changed meanwhile, is never overwritten;
        returns the keys swapped.
        """
        t = authorities if table is KeyTable.AUTHORITIES else credentials
        pk = t.c.name if table is KeyTable.AUTHORITIES else t.c.credential_id
        with self._transaction() as conn:
            # The audit head first: this transaction queues behind the service's appends (which
            # hold the head until they commit) before it locks any credential row.
            conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.id == 1)
                .values(sequence=audit_head.c.sequence)
            )
            done = []
            for stored, blob in changes:
                swapped = conn.execute(
                    sa.update(t)
                    .where(pk == stored.row_id, t.c.key_blob == stored.key.blob)
                    .values(key_blob=blob)
                )
                if swapped.rowcount == 1:
                    done.append(stored)
            event = audit(done)
            if event is not None:
                self._append_in(conn, event, now)
        return done

    def software_kek_ids(self) -> Counter[str]:
        """How many software blobs (CA keys and credential keys) name each KEK id.

        Counted in the database from the blob header (``EGK1``, a length byte, the id; see
        adapters/software_custody.py) without reading the blobs out.
        """
        counts: Counter[str] = Counter()
        with self._engine.connect() as conn:
            for t in (authorities, credentials):
                blob = t.c.key_blob
                software = sa.and_(
                    t.c.backend == CustodyBackend.SOFTWARE.value,
                    _substr(blob, 1, 4) == _SOFTWARE_MAGIC,
                )
                lengths = sa.select(_substr(blob, 5, 1).label("n")).where(software).subquery()
                for (n,) in conn.execute(sa.select(lengths.c.n).distinct()).all():
                    size = bytes(n)[0] if n else 0
                    if size == 0:
                        continue
                    ids = (
                        sa.select(_substr(blob, 6, size).label("kek_id"))
                        .where(software, _substr(blob, 5, 1) == bytes([size]))
                        .subquery()
                    )
                    query = sa.select(ids.c.kek_id, sa.func.count()).group_by(ids.c.kek_id)
                    for kek_id, count in conn.execute(query).all():
                        counts[bytes(kek_id).decode("utf-8", "replace")] += int(count)
        return counts


_SOFTWARE_MAGIC = b"EGK1"


def _substr(column: sa.ColumnElement[bytes], start: int, length: int) -> sa.ColumnElement[bytes]:
    # substr() on bytes in both SQLite and PostgreSQL; 1-based byte offsets. The offsets are
    # literals (our own ints): PostgreSQL then sees the same expression wherever it repeats.
    return sa.func.substr(
        column,
        sa.literal_column(str(int(start))),
        sa.literal_column(str(int(length))),
        type_=sa.LargeBinary,
    )


class _DeadBeforeBegin(Exception):
    """The connection was dead before its transaction began."""


class StaleCredential(Exception):
    """The credential changed state between read and write."""


class StaleAuthority(Exception):
    """The authority a certificate or CRL was signed by no longer holds its name: bootstrap
    replaced it (in any process) after this process last read the hierarchy."""


def _require_issuer_key_in(conn: Connection, issuer: str, key_id: str) -> None:
    """StaleAuthority unless the authority named ``issuer`` holds ``key_id``. Called after the
    transaction's audit append, which holds the head row until commit: a retirement, which
    appends too, commits entirely before or after this transaction."""
    held = conn.execute(
        sa.select(authorities.c.key_id).where(authorities.c.name == issuer)
    ).scalar_one_or_none()
    if held != key_id:
        raise StaleAuthority(issuer)


def _audit(row: sa.Row[tuple[object, ...]]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        int(m["sequence"]),
        from_us(int(m["occurred_at_us"])),
        str(m["action"]),
        str(m["actor"]),
        str(m["credential_id"]),
        str(m["outcome"]),
        str(m["details_json"]),
        bytes(m["previous_hash"]),
        bytes(m["entry_hash"]),
    )


def _certificate(row: sa.Row[tuple[object, ...]] | Mapping[str, Any]) -> CertificateRow:
    m = row._mapping if isinstance(row, sa.Row) else row
    return CertificateRow(
        int(str(m["serial_hex"]), 16),
        str(m["issuer"]),
        CertificateStatus(m["status"]),
        from_us(int(m["revoked_at_us"])) if m["revoked_at_us"] is not None else None,
        RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None,
    )


def _credential_values(c: Credential) -> dict[str, object]:
    return {
        "credential_id": c.credential_id,
        "owner": str(c.owner),
        "kind": c.kind.value,
        "key_id": c.key.key_id,
        "backend": c.key.backend.value,
        "algorithm": c.key.algorithm.value,
        "public_key_der": c.key.public_key_der,
        "key_blob": c.key.blob,
        "certificate_der": c.certificate_der,
        "certificate_serial": f"{c.certificate_serial:x}",
        "issuer": c.issuer,
        "not_before_us": to_us(c.not_before),
        "not_after_us": to_us(c.not_after),
        "status": c.status.value,
        "created_at_us": to_us(c.created_at),
        "created_by": c.created_by,
        "max_signatures": c.max_signatures,
        "renewed_from": c.renewed_from,
        "renewed_by": c.renewed_by,
    }


def _revoke_certificate_in(
    conn: Connection,
    issuer: str,
    serial: int,
    reason: RevocationReason,
    now: dt.datetime,
    *,
    authority: bool = False,
) -> bool:
    """Revoke certificate ``serial`` of ``issuer`` (with ``authority``, only an authority's own
    certificate) and give ``issuer`` a new revocation epoch, so that its CRL is issued again.
    False when there was no such certificate not yet revoked (nothing changed)."""
    where = [
        certificates.c.serial_hex == f"{serial:x}",
        certificates.c.issuer == issuer,
        certificates.c.status != CertificateStatus.REVOKED.value,
    ]
    if authority:
        where.append(certificates.c.credential_id.is_(None))
    done = conn.execute(
        sa.update(certificates)
        .where(*where)
        .values(
            status=CertificateStatus.REVOKED.value,
            revoked_at_us=to_us(now),
            revocation_reason=reason.value,
        )
    )
    if done.rowcount != 1:
        return False
    conn.execute(
        sa.update(authorities)
        .where(authorities.c.name == issuer)
        .values(revocation_epoch=authorities.c.revocation_epoch + 1)
    )
    return True


def _credential(row: sa.Row[tuple[object, ...]] | Mapping[str, Any]) -> Credential:
    m = row._mapping if isinstance(row, sa.Row) else row
    return Credential(
        credential_id=str(m["credential_id"]),
        owner=parse_identifier(str(m["owner"])),
        kind=OwnerKind(m["kind"]),
        key=KeyReference(
            str(m["key_id"]),
            CustodyBackend(m["backend"]),
            KeyAlgorithm(m["algorithm"]),
            KeyRole.OWNER,
            bytes(m["public_key_der"]),
            bytes(m["key_blob"]),
        ),
        certificate_der=bytes(m["certificate_der"]),
        certificate_serial=int(str(m["certificate_serial"]), 16),
        issuer=str(m["issuer"]),
        not_before=from_us(int(m["not_before_us"])),
        not_after=from_us(int(m["not_after_us"])),
        status=CredentialStatus(m["status"]),
        created_at=from_us(int(m["created_at_us"])),
        created_by=str(m["created_by"]),
        max_signatures=int(m["max_signatures"]),
        renewed_from=str(m["renewed_from"]),
        renewed_by=str(m["renewed_by"]),
        revoked_at=from_us(int(m["revoked_at_us"])) if m["revoked_at_us"] is not None else None,
        revocation_reason=(
            RevocationReason(m["revocation_reason"]) if m["revocation_reason"] else None
        ),
    )


def _sad(row: Sequence[Any]) -> SadRecord:
    """A SadRecord from the ``sads`` columns in table order."""
    m = dict(zip(SAD_COLUMNS, row, strict=True))
    return SadRecord(
        str(m["sad_hash"]),
        str(m["credential_id"]),
        HashAlgorithm(m["hash_algorithm"]),
        str(m["hashes_binding"]),
        int(m["num_signatures"]),
        from_us(int(m["expires_at_us"])),
        from_us(int(m["spent_at_us"])) if m["spent_at_us"] is not None else None,
    )


def _sad_values(sad: SadRecord) -> dict[str, Any]:
    return {
        "sad_hash": sad.sad_hash,
        "credential_id": sad.credential_id,
        "hash_algorithm": sad.hash_algorithm.value,
        "hashes_binding": sad.hashes_binding,
        "num_signatures": sad.num_signatures,
        "expires_at_us": to_us(sad.expires_at),
        "spent_at_us": None,
    }


def _chain(
    head: tuple[int, bytes], entries: Sequence[tuple[AuditEvent, dt.datetime]]
) -> list[AuditRecord]:
    """The records that follow ``head`` (sequence, entry hash) for ``entries``, in order."""
    sequence, previous = head
    records = []
    for event, when in entries:
        sequence += 1
        # Round to microseconds, the stored resolution, so the verifier recomputes the same hash.
        when = from_us(to_us(when))
        digest = entry_hash(
            previous,
            sequence,
            when,
            event.action,
            event.actor,
            event.credential_id,
            event.outcome,
            event.details_json,
        )
        records.append(
            AuditRecord(
                sequence,
                when,
                event.action,
                event.actor,
                event.credential_id,
                event.outcome,
                event.details_json,
                previous,
                digest,
            )
        )
        previous = digest
    return records


def _audit_values(record: AuditRecord) -> dict[str, Any]:
    return {
        "sequence": record.sequence,
        "occurred_at_us": to_us(record.occurred_at),
        "action": record.action,
        "actor": record.actor,
        "credential_id": record.credential_id,
        "outcome": record.outcome,
        "details_json": record.details_json,
        "previous_hash": record.previous_hash,
        "entry_hash": record.entry_hash,
    }


_AUDIT, _INSERT_SAD, _SPEND = range(3)

#: Hot-path connections a process keeps between calls.
_IDLE_CONNECTIONS = 8
#: Parsed credentials kept per process (a row, ~2 KB, and its Credential each).
_PARSED_CREDENTIALS = 4096


@dataclass(eq=False, slots=True)
class _Write:
    """One caller's write waiting for its turn (group commit): an audit entry alone, a new SAD
    with its entry, or a SAD spend with its entry (written only if the spend wins)."""

    kind: int
    event: AuditEvent
    now: dt.datetime
    sad: SadRecord | None = None
    won: bool = False
    record: AuditRecord | None = None
    error: Exception | None = None

    def sort_key(self) -> tuple[int, str]:
        return self.kind, self.sad.sad_hash if self.sad is not None else ""

    def fail(self, error: Exception) -> None:
        self.error = error
