"""The registry's transactional store: documents, history and the Merkle log in one database.

Every write (registration, revocation, supersession) runs in ONE short transaction that first
takes the log lock -- ``SELECT ... FOR UPDATE`` on the single ``log_head`` row on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite -- then checks, writes the rows, appends the leaves (O(log n) node
rows each) and bumps the head. So appends are serialised by the database, never by one process,
and a registration and its leaf commit together or not at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.clock import Clock
from egov_common.db import (
    CompiledStatement,
    HotConnections,
    WalCheckpoints,
    WriterTurn,
    make_engine,
)
from egov_common.errors import (
    AlreadyExists,
    DataLoss,
    EgovError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from egov_common.forking import in_forked_children
from egov_common.group_commit import GroupCommit
from egov_pki import merkle
from egov_pki.merkle import NodeKey
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..domain import rules
from ..domain.model import (
    Actor,
    Document,
    DocumentQuery,
    DocumentStatus,
    Page,
    Registration,
    RegistrationOutcome,
    Reservation,
    RevocationReason,
    StatusChange,
)
from .models import (
    DocumentRow,
    IdempotencyKey,
    LogHead,
    LogLeaf,
    LogNode,
    ReservationRow,
    StatusChangeRow,
)

__all__ = ["LoggedEntry", "RegistryStore"]

_T = TypeVar("_T")

_DOCS = cast(sa.Table, DocumentRow.__table__)
_CHANGES = cast(sa.Table, StatusChangeRow.__table__)
_KEYS = cast(sa.Table, IdempotencyKey.__table__)
_RESERVATIONS = cast(sa.Table, ReservationRow.__table__)
_NODES = cast(sa.Table, LogNode.__table__)
_LEAVES = cast(sa.Table, LogLeaf.__table__)
_HEAD = cast(sa.Table, LogHead.__table__)

# A document with its whole history in one round trip (every document has at least one change).
_WITH_HISTORY = (
    sa.select(
        _DOCS,
        *(
            column.label(f"c_{column.name}")
            for column in _CHANGES.c
            if column.name != "document_id"
        ),
    )
    .join(_CHANGES, _CHANGES.c.document_id == _DOCS.c.document_id)
    .order_by(_DOCS.c.document_id, _CHANGES.c.seq)
)
_ONE_DOCUMENT = _WITH_HISTORY.where(_DOCS.c.document_id == sa.bindparam("document_id"))
_KEY_DOCUMENT = sa.select(_KEYS.c.document_id).where(
    _KEYS.c.idempotency_key == sa.bindparam("idempotency_key"),
    _KEYS.c.issuer == sa.bindparam("issuer"),
)
_IDS_BY_HASH = (
    sa.select(_DOCS.c.document_id)
    .where(_DOCS.c.sha256 == sa.bindparam("sha256"))
    .order_by(_DOCS.c.registered_at_ms, _DOCS.c.document_id)
)
# The same documents with their histories in one query (SQLite: the digest/issuer unique key,
# then the history by primary key). PostgreSQL takes _IDS_BY_HASH and _ONE_DOCUMENT instead:
# until its statistics exist (a registry filled in one go) it planned this join as a scan of
# every table.
_BY_HASH = (
    _WITH_HISTORY.where(_DOCS.c.sha256 == sa.bindparam("sha256"))
    .order_by(None)
    .order_by(_DOCS.c.registered_at_ms, _DOCS.c.document_id, _CHANGES.c.seq)
)

_TREE_SIZE = sa.select(_HEAD.c.tree_size).where(_HEAD.c.id == 1)
_SET_TREE_SIZE = sa.update(_HEAD).where(_HEAD.c.id == 1).values(tree_size=sa.bindparam("size"))


def _keys_select(count: int) -> sa.Select[Any]:
    """Idempotency keys among ``count`` given (parameters ``v0``...)."""
    values: list[sa.BindParameter[Any]] = [sa.bindparam(f"v{i}") for i in range(count)]
    return sa.select(_KEYS).where(_KEYS.c.idempotency_key.in_(values))


def _hashes_select(count: int) -> sa.Select[Any]:
    """Documents with one of ``count`` digests (parameters ``v0``...)."""
    values: list[sa.BindParameter[Any]] = [sa.bindparam(f"v{i}") for i in range(count)]
    return sa.select(_DOCS.c.issuer, _DOCS.c.sha256, _DOCS.c.document_id).where(
        _DOCS.c.sha256.in_(values)
    )


_RESERVATIONS_BY_ID = sa.select(_RESERVATIONS).where(
    _RESERVATIONS.c.document_id.in_(sa.bindparam("ids", expanding=True))
)
_USED_IDS = sa.select(_DOCS.c.document_id).where(
    _DOCS.c.document_id.in_(sa.bindparam("ids", expanding=True))
)


def _nodes_select(count: int) -> sa.Select[Any]:
    """``count`` point lookups OR-ed (SQLite scans the table for a row-value IN)."""
    return sa.select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash).where(
        sa.or_(
            *(
                sa.and_(
                    _NODES.c.level == sa.bindparam(f"l{i}"), _NODES.c.idx == sa.bindparam(f"i{i}")
                )
                for i in range(count)
            )
        )
    )


#: Largest number of log entries one GetLogEntries call returns.
MAX_LOG_ENTRIES = 1000


class _Statements:
    """The prepared statements of one dialect (nodes lookups by count, on first use)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self.one_document = CompiledStatement(_ONE_DOCUMENT, dialect)
        self.key_document = CompiledStatement(_KEY_DOCUMENT, dialect)
        self.ids_by_hash = CompiledStatement(_IDS_BY_HASH, dialect)
        self.by_hash = CompiledStatement(_BY_HASH, dialect)
        self.tree_size = CompiledStatement(_TREE_SIZE, dialect)
        self.tree_size_for_update = CompiledStatement(_TREE_SIZE.with_for_update(), dialect)
        self.set_tree_size = CompiledStatement(_SET_TREE_SIZE, dialect)
        self.inserts = {
            table.name: CompiledStatement(_INSERTS[table.name], dialect)
            for table in (_DOCS, _CHANGES, _KEYS, _NODES, _LEAVES)
        }
        self._by_count: dict[tuple[Callable[[int], sa.Select[Any]], int], CompiledStatement] = {}

    def _counted(self, make: Callable[[int], sa.Select[Any]], count: int) -> CompiledStatement:
        statement = self._by_count.get((make, count))
        if statement is None:
            statement = self._by_count[(make, count)] = CompiledStatement(
                make(count), self._dialect
            )
        return statement

    def nodes(self, count: int) -> CompiledStatement:
        return self._counted(_nodes_select, count)

    def rows_among(
        self, cursor: Any, make: Callable[[int], sa.Select[Any]], values: Sequence[Any]
    ) -> list[Any]:
        """Rows of ``make(len(values))`` for ``values`` (one statement per count, compiled once;
        counts are bounded by the batch size)."""
        if not values:
            return []
        parameters = {f"v{i}": value for i, value in enumerate(values)}
        return self._counted(make, len(values)).rows(cursor, parameters)


_INSERTS = {table.name: sa.insert(table) for table in (_DOCS, _CHANGES, _KEYS, _NODES, _LEAVES)}


def _insert_rows(conn: Connection, *batches: tuple[sa.Table, Sequence[Mapping[str, Any]]]) -> None:
    """Insert each batch of rows into its table, in order.

    SQLite: the driver's ``executemany`` on precompiled SQL (a loop in C). Other databases:
    SQLAlchemy's multi-row INSERT (one statement per 1,000 rows, not one round trip per row).
    """
    if conn.dialect.name != "sqlite":
        for table, rows in batches:
            if rows:
                conn.execute(_INSERTS[table.name], list(rows))
        return
    statements = _statements(conn.dialect)
    cursor = conn.connection.cursor()
    try:
        for table, rows in batches:
            if rows:
                statements.inserts[table.name].execute_many(cursor, rows)
    finally:
        cursor.close()


_STATEMENTS: dict[str, _Statements] = {}
_STATEMENTS_LOCK = threading.Lock()


def _statements(dialect: sa.Dialect) -> _Statements:
    with _STATEMENTS_LOCK:
        found = _STATEMENTS.get(dialect.name)
        if found is None:
            found = _STATEMENTS[dialect.name] = _Statements(dialect)
        return found


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    leaf_index: int
    document_id: str
    event_type: merkle.LogEventType
    leaf_data: bytes

    @property
    def leaf_hash(self) -> bytes:
        """Of the stored bytes, as read: an edited row hashes to a leaf not in the tree."""
        return merkle.leaf_hash(self.leaf_data)


_Slot = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Pending:
    """A registration on its way to a group commit, with what it needs that no stored state
    decides worked out beforehand: the write turn, which every other writer waits for, is no
    place for it."""

    position: int
    registration: Registration
    fingerprint: bytes
    document_id: str  # the reserved id, or a new one (used if the registration is new)


@dataclass
class _RegistrationJob:
    """One caller's registrations waiting for a group commit."""

    actor: Actor
    items: list[_Pending]
    outcomes: dict[int, RegistrationOutcome | EgovError] = field(default_factory=dict)
    error: BaseException | None = None

    def fail(self, error: Exception) -> None:
        """What a job whose commit alone raised gets: the error, which its caller raises (an
        unexpected one is INTERNAL for that caller only)."""
        self.outcomes.clear()
        self.error = error


class _Appender:
    """Appends leaves inside one locked transaction, caching the nodes it reads and writes."""

    def __init__(
        self, conn: Connection, size: int, now_ms: int, nodes: dict[NodeKey, bytes]
    ) -> None:
        self.conn = conn
        self.start_size = size
        self.size = size
        self.now_ms = now_ms
        self.nodes = nodes  # at least the roots of the complete subtrees of the tree of `size`
        self.new_nodes: list[dict[str, Any]] = []
        self.new_leaves: list[dict[str, Any]] = []

    def append(self, entry: merkle.LogEntry) -> int:
        index = self.size
        data = entry.encode()
        written = merkle.append_nodes(index, merkle.leaf_hash(data), self.nodes)
        for key, digest in written:
            self.nodes[key] = digest
            self.new_nodes.append({"level": key.level, "idx": key.index, "hash": digest})
        self.new_leaves.append(
            {
                "leaf_index": index,
                "document_id": entry.document_id,
                "event_type": entry.event_type.value,
                "leaf_data": data,
                "appended_at_ms": self.now_ms,
            }
        )
        self.size += 1
        return index

    def flush(self) -> None:
        if self.size == self.start_size:
            return
        _insert_rows(self.conn, (_NODES, self.new_nodes), (_LEAVES, self.new_leaves))
        cursor = self.conn.connection.cursor()
        try:
            _statements(self.conn.dialect).set_tree_size.execute(cursor, {"size": self.size})
        finally:
            cursor.close()

    def frontier(self) -> dict[NodeKey, bytes] | None:
        """The nodes the next append needs (``None`` if one is not known here)."""
        keys = merkle.root_nodes(self.size)
        if not all(key in self.nodes for key in keys):
            return None
        return {key: self.nodes[key] for key in keys}


def _fetch_nodes(conn: Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    statement = _statements(conn.dialect).nodes(len(wanted))
    values: dict[str, int] = {}
    for number, key in enumerate(wanted):
        values[f"l{number}"], values[f"i{number}"] = key.level, key.index
    cursor = conn.connection.cursor()
    try:
        rows = statement.rows(cursor, values)
    finally:
        cursor.close()
    found = {NodeKey(row.level, row.idx): bytes(row.hash) for row in rows}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise DataLoss(
            "LOG_NODE_MISSING",
            "a stored log node is missing; the log needs an audit",
            metadata={"node": f"{missing[0].level}/{missing[0].index}"},
        )
    return found


class RegistryStore:
    """Registry operations over one database (SQLite file or PostgreSQL).

    Raises ``EgovError`` subclasses with the reasons of registry.proto; a database that is busy
    or a race lost to another process surfaces as UNAVAILABLE (STORAGE_BUSY), which clients
    retry with the same idempotency key.
    """

    def __init__(
        self,
        database_url: str,
        *,
        clock: Clock,
        log_key: ec.EllipticCurvePrivateKey,
        reservation_ttl_ms: int = 24 * 3600 * 1000,
    ) -> None:
        self._clock = clock
        self._log_key = log_key
        self._reservation_ttl_ms = reservation_ttl_ms
        self._sqlite = sa.make_url(database_url).get_backend_name() == "sqlite"
        # No pre-ping on PostgreSQL: it costs a round trip per call, and a connection the server
        # dropped fails one call as UNAVAILABLE (the pool is then invalidated) which clients retry.
        # PostgreSQL reads run in autocommit: one round trip per query, not BEGIN, the query and
        # the pool's ROLLBACK. (Rows are never changed but for a status, and the log only
        # grows, so reads need no snapshot spanning their queries.) Writes take their own
        # connections; one writer at a time per process holds the log lock.
        self._read_engine: Engine = (
            make_engine(database_url)
            if self._sqlite
            else make_engine(
                database_url,
                pool_pre_ping=False,
                pool_size=10,
                max_overflow=10,
                isolation_level="AUTOCOMMIT",
            )
        )
        # SQLite: the WAL is copied back into the database by a thread of its own, not inside
        # a registration's transaction and write turn.
        self._turn = WriterTurn(database_url)
        self._checkpoints = WalCheckpoints(database_url, self._turn)
        if self._sqlite:
            sa.event.listen(self._read_engine, "connect", _sqlite_cache)
            self._write_engine = make_engine(database_url)
            sa.event.listen(self._write_engine, "connect", _sqlite_cache)
            sa.event.listen(self._write_engine, "connect", _sqlite_manual_transactions)
            sa.event.listen(self._write_engine, "begin", _sqlite_begin_immediate)
            self._checkpoints.attach(self._write_engine)
        else:
            self._write_engine = make_engine(
                database_url, pool_pre_ping=False, pool_size=2, max_overflow=3
            )
        self._dialect = self._read_engine.dialect
        self._sql = _statements(self._dialect)
        dbapi = self._dialect.loaded_dbapi
        self._driver_unavailable: type[Exception] = dbapi.OperationalError
        self._driver_busy: tuple[type[BaseException], ...] = (
            sa_exc.OperationalError,
            sa_exc.IntegrityError,
            dbapi.OperationalError,
            dbapi.IntegrityError,
        )
        self.log_id = merkle.log_id(log_key.public_key())
        # (tree size, the nodes its next append needs) as of this process's last commit: saves
        # reading them again when no other process appended since.
        self._frontier: tuple[int, dict[NodeKey, bytes]] | None = None
        self._reads = HotConnections(self._read_engine)
        self._group: GroupCommit[_RegistrationJob] = GroupCommit(
            self._run_jobs, turn=lambda: self._turn, failed=_RegistrationJob.fail
        )
        self.public_key_der = log_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # A worker forked by egov_common.server (EGOV_REGISTRY_PROCESSES > 1) must not use the
        # parent's pooled connections: it drops them (without closing them under the parent)
        # and opens its own; its appends are serialised with the others' by the database.
        in_forked_children(self, RegistryStore._after_fork)

    def _after_fork(self) -> None:
        self._reads.after_fork()  # the parent's connections: dropped, not closed
        if self._write_engine is not self._read_engine:
            self._write_engine.dispose(close=False)
        self._turn.after_fork()
        self._checkpoints.after_fork()
        self._group.after_fork()

    def close(self) -> None:
        self._checkpoints.close()
        self._turn.close()
        self._reads.close()
        if self._write_engine is not self._read_engine:
            self._write_engine.dispose()

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        """A read connection; a database that cannot be reached is UNAVAILABLE (retryable)."""
        try:
            with self._read_engine.connect() as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            raise Unavailable(
                "STORAGE_UNAVAILABLE", "the registry database cannot be reached; retry"
            ) from exc

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """A write transaction in this process's turn (``egov_common.db.WriterTurn``: one
        writer at a time per process, and per SQLite file); commits on normal exit."""
        try:
            with self._turn, self._write_engine.begin() as conn:
                yield conn
        except self._driver_busy as exc:
            raise _busy() from exc

    @contextmanager
    def _locked_log(self) -> Iterator[_Appender]:
        """A write transaction holding the log lock; commits on normal exit.

        The in-process lock only spares this process's writers SQLite's busy-wait sleeps; the
        database lock is what serialises appends across processes.
        """
        head = self._sql.tree_size if self._sqlite else self._sql.tree_size_for_update
        try:
            with self._turn:  # until the frontier is noted (re-entered by _write_transaction)
                with self._write_transaction() as conn:
                    cursor = conn.connection.cursor()
                    try:
                        size = int(head.rows(cursor, {})[0].tree_size)
                    finally:
                        cursor.close()
                    known = self._frontier
                    nodes = (
                        dict(known[1])
                        if known is not None and known[0] == size
                        else _fetch_nodes(conn, merkle.root_nodes(size))
                    )
                    appender = _Appender(conn, size, self._now_ms(), nodes)
                    yield appender
                    appender.flush()
                # Committed: the log is now exactly what this appender made of it.
                frontier = appender.frontier()
                self._frontier = None if frontier is None else (appender.size, frontier)
        except self._driver_busy as exc:
            raise _busy() from exc

    # -- reservations ----------------------------------------------------------------------

    def reserve(
        self, actor: Actor, issuer: str, document_type: str, idempotency_key: str = ""
    ) -> Reservation:
        """A new reserved id. With the idempotency key the registration will carry:
        ALREADY_EXISTS (ALREADY_REGISTERED, metadata ``document_id``) when this issuer registered
        a document under it already, so that a client retrying a signing whose answer it lost
        does not sign the document again only to have its registration refused."""
        rules.require_issuer(actor, issuer)
        if idempotency_key:
            rules.check_idempotency_key(idempotency_key)
            params = {"idempotency_key": idempotency_key, "issuer": issuer}
            rows = self._read(lambda cursor: self._sql.key_document.rows(cursor, params))
            if rows:
                document_id = str(rows[0][0])
                raise AlreadyExists(
                    "ALREADY_REGISTERED",
                    f"{document_id} is registered under this idempotency key already",
                    field_violations=(FieldViolation("idempotency_key", "registered"),),
                    metadata={"document_id": document_id},
                )
        now = self._now_ms()
        reservation = Reservation(
            rules.new_document_id(), issuer, document_type, now + self._reservation_ttl_ms
        )
        with self._write_transaction() as conn:
            conn.execute(
                sa.insert(_RESERVATIONS).values(
                    document_id=reservation.document_id,
                    issuer=issuer,
                    document_type=document_type,
                    reserved_by=actor.subject,
                    created_at_ms=now,
                    expires_at_ms=reservation.expires_at_ms,
                )
            )
        return reservation

    # -- registration ------------------------------------------------------------------------

    def register(
        self, actor: Actor, registrations: Sequence[Registration]
    ) -> list[RegistrationOutcome | EgovError]:
        """Register documents; one outcome or error per request, in order.

        Validation and authorisation errors are per item; nothing is written for a failed item.
        Concurrent calls in this process are committed together (group commit): one waiting
        caller runs everyone's queued registrations in one transaction, so the log lock is
        taken once per group rather than once per document.
        """
        results: dict[int, RegistrationOutcome | EgovError] = {}
        pending: list[_Pending] = []
        for position, registration in enumerate(registrations):
            try:
                rules.validate_registration(registration)
                rules.require_issuer(actor, registration.issuer)
            except EgovError as error:
                results[position] = error
            else:
                pending.append(
                    _Pending(
                        position,
                        registration,
                        rules.registration_fingerprint(registration),
                        registration.document_id or rules.new_document_id(),
                    )
                )
        if pending:
            job = _RegistrationJob(actor, pending)
            self._group.submit(job)  # returns once committed with others queued meanwhile
            if job.error is not None:
                raise job.error
            results.update(job.outcomes)
        return [results[position] for position in range(len(registrations))]

    def _run_jobs(self, jobs: list[_RegistrationJob]) -> None:
        """Commit a group: every job gets its outcomes, or the group's error."""
        flat = [
            ((number, item.position), item, job.actor)
            for number, job in enumerate(jobs)
            for item in job.items
        ]
        try:
            with self._locked_log() as log:
                for (number, position), outcome in self._register_locked(log, flat):
                    jobs[number].outcomes[position] = outcome
        except EgovError as error:  # the database is busy or out of reach: every job alike
            for job in jobs:
                job.outcomes.clear()
                job.error = error
        except Exception:
            for job in jobs:
                job.outcomes.clear()
            raise  # one job broke the transaction: the group commit tries each alone
        except BaseException:
            for job in jobs:
                job.outcomes.clear()
                job.error = Unavailable("STORAGE_BUSY", "the registration did not commit; retry")
            raise

    def _register_locked(
        self, log: _Appender, pending: list[tuple[_Slot, _Pending, Actor]]
    ) -> Iterator[tuple[_Slot, RegistrationOutcome | EgovError]]:
        conn, now = log.conn, log.now_ms
        regs = [item.registration for _, item, _ in pending]
        wanted_keys = {(r.issuer, r.idempotency_key) for r in regs}
        cursor = conn.connection.cursor()
        try:
            key_rows = self._sql.rows_among(
                cursor, _keys_select, sorted({key for _, key in wanted_keys})
            )
            hash_rows = self._sql.rows_among(
                cursor, _hashes_select, sorted({r.sha256 for r in regs})
            )
        finally:
            cursor.close()
        known_keys = {
            (row.issuer, row.idempotency_key): (bytes(row.fingerprint), row.document_id)
            for row in key_rows
            if (row.issuer, row.idempotency_key) in wanted_keys
        }
        known_hashes = {(row.issuer, bytes(row.sha256)): row.document_id for row in hash_rows}
        wanted_ids = sorted({r.document_id for r in regs if r.document_id})
        reservations = (
            {row.document_id: row for row in conn.execute(_RESERVATIONS_BY_ID, {"ids": wanted_ids})}
            if wanted_ids
            else {}
        )
        used_ids = (
            set(conn.execute(_USED_IDS, {"ids": wanted_ids}).scalars()) if wanted_ids else set()
        )
        replay_ids = sorted({doc_id for _, doc_id in known_keys.values()})
        existing = self._load_documents(conn, replay_ids)

        new_docs: list[dict[str, Any]] = []
        new_changes: list[dict[str, Any]] = []
        new_keys: list[dict[str, Any]] = []
        fresh: dict[str, Document] = {}
        for position, item, actor in pending:
            reg, fingerprint = item.registration, item.fingerprint
            seen = known_keys.get((reg.issuer, reg.idempotency_key))
            if seen is not None:
                if seen[0] != fingerprint:
                    yield (
                        position,
                        FailedPrecondition(
                            "IDEMPOTENCY_KEY_REUSED",
                            "this idempotency key was used for a different registration",
                            field_violations=(FieldViolation("idempotency_key", "reused"),),
                            metadata={"document_id": seen[1]},
                        ),
                    )
                else:
                    document = fresh.get(seen[1]) or existing[seen[1]]
                    yield position, RegistrationOutcome(document, replayed=True)
                continue
            duplicate = known_hashes.get((reg.issuer, reg.sha256))
            if duplicate is not None:
                yield (
                    position,
                    AlreadyExists(
                        "HASH_ALREADY_REGISTERED",
                        f"this issuer already registered this SHA-256 as {duplicate}",
                        field_violations=(FieldViolation("sha256", "already registered"),),
                        metadata={"document_id": duplicate},
                    ),
                )
                continue
            if reg.valid_from_ms is None:  # it starts now: the end must come after now
                try:
                    rules.check_valid_until(reg, now)
                except EgovError as error:
                    yield position, error
                    continue
            if reg.document_id:
                problem = self._reservation_problem(reg, reservations, used_ids, now)
                if problem is not None:
                    yield position, problem
                    continue
            document_id = item.document_id
            change = StatusChange(DocumentStatus.REGISTERED, now, log.size, actor.subject)
            document = Document(
                document_id=document_id,
                sha256=reg.sha256,
                issuer=reg.issuer,
                document_type=reg.document_type,
                subject=reg.subject,
                signer_certificate_sha256=reg.signer_certificate_sha256,
                valid_from_ms=now if reg.valid_from_ms is None else reg.valid_from_ms,
                valid_until_ms=reg.valid_until_ms,
                metadata=dict(reg.metadata),
                registered_at_ms=now,
                history=(change,),
            )
            leaf_index = log.append(rules.log_entry(document, change))
            assert leaf_index == change.leaf_index
            new_docs.append(_document_row(document))
            new_changes.append(_change_row(document_id, 0, change))
            new_keys.append(
                {
                    "issuer": reg.issuer,
                    "idempotency_key": reg.idempotency_key,
                    "fingerprint": fingerprint,
                    "document_id": document_id,
                }
            )
            known_keys[(reg.issuer, reg.idempotency_key)] = (fingerprint, document_id)
            known_hashes[(reg.issuer, reg.sha256)] = document_id
            used_ids.add(document_id)
            fresh[document_id] = document
            yield position, RegistrationOutcome(document, replayed=False)
        if new_docs:
            _insert_rows(conn, (_DOCS, new_docs), (_CHANGES, new_changes), (_KEYS, new_keys))

    @staticmethod
    def _reservation_problem(
        reg: Registration, reservations: Mapping[str, Any], used_ids: set[str], now: int
    ) -> EgovError | None:
        field = (FieldViolation("document_id", "not usable"),)
        reservation = reservations.get(reg.document_id)
        if reservation is None:
            return FailedPrecondition(
                "RESERVATION_NOT_FOUND",
                "no reservation for this document id",
                field_violations=field,
            )
        if reservation.issuer != reg.issuer:
            return FailedPrecondition(
                "RESERVATION_OTHER_ISSUER",
                "the id was reserved for another issuer",
                field_violations=field,
            )
        if reservation.document_type != reg.document_type:
            return FailedPrecondition(
                "RESERVATION_OTHER_TYPE",
                f"the id was reserved for documents of type {reservation.document_type}",
                field_violations=field,
            )
        if reg.document_id in used_ids:
            return FailedPrecondition(
                "RESERVATION_USED",
                "a document is already registered with this id",
                field_violations=field,
                metadata={"document_id": reg.document_id},
            )
        if reservation.expires_at_ms <= now:
            return FailedPrecondition(
                "RESERVATION_EXPIRED", "the reservation has expired", field_violations=field
            )
        return None

    # -- status changes ----------------------------------------------------------------------

    def revoke(
        self, actor: Actor, document_id: str, reason: RevocationReason | None, reason_text: str
    ) -> Document:
        rules.check_document_id(document_id)
        rules.check_reason_text(reason_text)
        if reason is None:
            raise InvalidArgument(
                "REVOCATION_REASON_MISSING",
                "a revocation reason is required",
                field_violations=(FieldViolation("reason", "required"),),
            )
        with self._locked_log() as log:
            document = self._get_in(log.conn, document_id)
            rules.require_issuer(actor, document.issuer)
            if document.status is DocumentStatus.REVOKED:
                last = document.history[-1]
                if last.reason is reason and last.reason_text == reason_text:
                    return document  # a retry of the same revocation
                raise FailedPrecondition(
                    "DOCUMENT_REVOKED",
                    "the document is already revoked",
                    metadata={"document_id": document_id},
                )
            if document.status is DocumentStatus.SUPERSEDED:
                raise FailedPrecondition(
                    "DOCUMENT_SUPERSEDED",
                    "the document has been superseded",
                    metadata={"document_id": document_id, "superseded_by": document.superseded_by},
                )
            change = StatusChange(
                DocumentStatus.REVOKED, log.now_ms, log.size, actor.subject, reason, reason_text
            )
            return self._apply_change(log, document, change)

    def supersede(
        self, actor: Actor, document_id: str, new_document_id: str, reason_text: str
    ) -> tuple[Document, Document]:
        rules.check_document_id(document_id)
        rules.check_document_id(new_document_id, "new_document_id")
        rules.check_reason_text(reason_text)
        if document_id == new_document_id:
            raise FailedPrecondition(
                "SUPERSEDE_SELF",
                "a document cannot supersede itself",
                field_violations=(FieldViolation("new_document_id", "same as document_id"),),
            )
        with self._locked_log() as log:
            old = self._get_in(log.conn, document_id)
            new = self._get_in(log.conn, new_document_id, "new_document_id")
            rules.require_issuer(actor, old.issuer)
            if new.issuer != old.issuer:
                raise FailedPrecondition(
                    "SUPERSEDE_OTHER_ISSUER", "the new document belongs to another issuer"
                )
            if (
                old.status is DocumentStatus.SUPERSEDED
                and old.superseded_by == new_document_id
                and old.history[-1].reason_text == reason_text
            ):
                return old, new  # a retry (with another reason text it is not: refused below)
            if old.status is not DocumentStatus.REGISTERED:
                reason = (
                    "DOCUMENT_REVOKED"
                    if old.status is DocumentStatus.REVOKED
                    else "DOCUMENT_SUPERSEDED"
                )
                raise FailedPrecondition(reason, f"the document is {old.status.value.lower()}")
            if new.status is not DocumentStatus.REGISTERED or new.supersedes:
                raise FailedPrecondition(
                    "NEW_DOCUMENT_NOT_ELIGIBLE",
                    "the new document is not in force or already replaces another",
                    metadata={"document_id": new_document_id},
                )
            if new.registered_at_ms < old.registered_at_ms:
                raise FailedPrecondition(
                    "NEW_DOCUMENT_NOT_ELIGIBLE",
                    "the new document was registered before the one it would replace",
                    metadata={"document_id": new_document_id},
                )
            change = StatusChange(
                DocumentStatus.SUPERSEDED,
                log.now_ms,
                log.size,
                actor.subject,
                reason_text=reason_text,
                superseded_by=new_document_id,
            )
            old = self._apply_change(log, old, change)
            log.conn.execute(
                sa.update(_DOCS)
                .where(_DOCS.c.document_id == new_document_id)
                .values(supersedes=document_id)
            )
            return old, replace(new, supersedes=document_id)

    def _apply_change(self, log: _Appender, document: Document, change: StatusChange) -> Document:
        leaf_index = log.append(rules.log_entry(document, change))
        assert leaf_index == change.leaf_index
        log.conn.execute(
            sa.insert(_CHANGES).values(
                **_change_row(document.document_id, len(document.history), change)
            )
        )
        log.conn.execute(
            sa.update(_DOCS)
            .where(_DOCS.c.document_id == document.document_id)
            .values(status=change.status.value)
        )
        return replace(document, history=(*document.history, change))

    # -- reads -------------------------------------------------------------------------------

    def _read(self, work: Callable[[Any], _T]) -> _T:
        """``work(cursor)`` on a kept or pooled read connection (``HotConnections``: one found
        dead is replaced once); a database that cannot be reached is UNAVAILABLE (retryable)."""
        try:
            return self._reads.read(work)
        except (sa_exc.OperationalError, self._driver_unavailable) as exc:
            raise Unavailable(
                "STORAGE_UNAVAILABLE", "the registry database cannot be reached; retry"
            ) from exc

    def get(self, document_id: str) -> Document:
        rules.check_document_id(document_id)
        found = _documents(
            self._read(
                lambda cursor: self._sql.one_document.rows(cursor, {"document_id": document_id})
            )
        )
        if document_id not in found:
            raise NotFound(
                "DOCUMENT_NOT_FOUND",
                "no document with this id",
                field_violations=(FieldViolation("document_id", "not found"),),
                metadata={"document_id": document_id},
            )
        return found[document_id]

    def _get_in(self, conn: Connection, document_id: str, field: str = "document_id") -> Document:
        found = self._load_documents(conn, [document_id])
        if document_id not in found:
            raise NotFound(
                "DOCUMENT_NOT_FOUND",
                "no document with this id",
                field_violations=(FieldViolation(field, "not found"),),
                metadata={"document_id": document_id},
            )
        return found[document_id]

    def lookup_by_hash(self, sha256: bytes) -> list[Document]:
        """Documents with this digest (one per issuer that registered it), oldest first."""
        rules.check_sha256(sha256)
        if self._sqlite:
            by_hash = self._read(lambda cursor: self._sql.by_hash.rows(cursor, {"sha256": sha256}))
            return list(_documents(by_hash).values())  # rows come in the documents' order

        def rows(cursor: Any) -> tuple[list[str], list[Any]]:
            ids = [
                row.document_id for row in self._sql.ids_by_hash.rows(cursor, {"sha256": sha256})
            ]
            found: list[Any] = []
            for document_id in ids:  # usually one: several only when issuers share a digest
                found += self._sql.one_document.rows(cursor, {"document_id": document_id})
            return ids, found

        ids, found_rows = self._read(rows)
        found = _documents(found_rows)
        return [found[i] for i in ids if i in found]

    def list_documents(self, query: DocumentQuery, page_size: int, page_token: str) -> Page:
        size = rules.page_size(page_size)
        cursor = rules.decode_page_token(query, page_token)
        select = sa.select(_DOCS.c.document_id)
        if query.issuer:
            select = select.where(_DOCS.c.issuer == query.issuer)
        if query.document_type:
            select = select.where(_DOCS.c.document_type == query.document_type)
        if query.subject:
            select = select.where(_DOCS.c.subject == query.subject)
        if query.status is not None:
            select = select.where(_DOCS.c.status == query.status.value)
        if query.registered_after_ms is not None:
            select = select.where(_DOCS.c.registered_at_ms >= query.registered_after_ms)
        if query.registered_before_ms is not None:
            select = select.where(_DOCS.c.registered_at_ms < query.registered_before_ms)
        if cursor is not None:
            at_ms, last_id = cursor
            select = select.where(
                sa.or_(
                    _DOCS.c.registered_at_ms < at_ms,
                    sa.and_(_DOCS.c.registered_at_ms == at_ms, _DOCS.c.document_id < last_id),
                )
            )
        select = select.order_by(_DOCS.c.registered_at_ms.desc(), _DOCS.c.document_id.desc()).limit(
            size + 1
        )
        with self._reader() as conn:
            ids = list(conn.execute(select).scalars())
            found = self._load_documents(conn, ids[:size])
        page = [found[i] for i in ids[:size]]
        token = rules.encode_page_token(query, page[-1]) if len(ids) > size else ""
        # The documents are read after their ids: one whose status changed in between (a
        # revocation) no longer matches a status filter, and is left out of the page.
        documents = tuple(d for d in page if query.status is None or d.status is query.status)
        return Page(documents, token)

    def _load_documents(self, conn: Connection, ids: Sequence[str]) -> dict[str, Document]:
        if not ids:
            return {}
        if len(ids) == 1:
            rows = conn.execute(_ONE_DOCUMENT, {"document_id": ids[0]})
        else:
            # Both sides filtered: PostgreSQL does not carry an IN list across the join.
            rows = conn.execute(
                _WITH_HISTORY.where(_DOCS.c.document_id.in_(ids), _CHANGES.c.document_id.in_(ids))
            )
        return _documents(rows)

    # -- the log ------------------------------------------------------------------------------

    def tree_size(self) -> int:
        with self._reader() as conn:
            return self._size(conn)

    @staticmethod
    def _size(conn: Connection) -> int:
        return int(conn.execute(sa.select(_HEAD.c.tree_size).where(_HEAD.c.id == 1)).scalar_one())

    def signed_tree_head(self, tree_size: int = 0) -> merkle.TreeHead:
        """Signed head of the current tree, or of an earlier ``tree_size`` (>= 1)."""
        current = self.tree_size()
        size = self._check_size(tree_size or current, current, "tree_size", allow_zero=True)
        with self._reader() as conn:
            return self._signed_head(conn, size, current)

    def _signed_head(self, conn: Connection, size: int, current: int) -> merkle.TreeHead:
        """The head of the first ``size`` leaves, dated now if that is the whole tree, else
        when its last leaf was appended: a head of an earlier size dated now would look as
        fresh as the current one to a relying party, and hide every change since (RFC 6962
        3.5 has a head's timestamp no older than its leaves, and heads grow in time)."""
        root = self._root(conn, size)
        if size == current:
            when = self._now_ms()
        else:
            when = int(
                conn.execute(
                    sa.select(_LEAVES.c.appended_at_ms).where(_LEAVES.c.leaf_index == size - 1)
                ).scalar_one()
            )
        return merkle.sign_tree_head(merkle.TreeHead(size, root, when), self._log_key)

    @staticmethod
    def _root(conn: Connection, size: int) -> bytes:
        if size == 0:
            return merkle.empty_root()
        return merkle.range_hash(0, size, _fetch_nodes(conn, merkle.root_nodes(size)))

    @staticmethod
    def _check_size(size: int, current: int, field: str, *, allow_zero: bool = False) -> int:
        if size < (0 if allow_zero else 1) or size > current:
            raise InvalidArgument(
                "TREE_SIZE_INVALID",
                f"{field} must be within [1, {current}]",
                field_violations=(FieldViolation(field, "out of range"),),
                metadata={"tree_size": str(current)},
            )
        return size

    def inclusion_proof(
        self, *, document_id: str = "", leaf_index: int | None = None, tree_size: int = 0
    ) -> tuple[LoggedEntry, list[bytes], merkle.TreeHead]:
        with self._reader() as conn:
            if document_id:
                rules.check_document_id(document_id)
                leaf_index = conn.execute(
                    sa.select(sa.func.max(_CHANGES.c.leaf_index)).where(
                        _CHANGES.c.document_id == document_id
                    )
                ).scalar_one_or_none()
                if leaf_index is None:
                    raise NotFound(
                        "DOCUMENT_NOT_FOUND",
                        "no document with this id",
                        field_violations=(FieldViolation("document_id", "not found"),),
                    )
            # The size after the leaf: read first, a change committed between the two reads
            # (a revocation) would be a leaf beyond the size read.
            current = self._size(conn)
            if leaf_index is None or not 0 <= leaf_index < current:
                raise NotFound(
                    "LEAF_NOT_FOUND",
                    "no leaf with this index",
                    field_violations=(FieldViolation("leaf_index", "not in the log"),),
                    metadata={"tree_size": str(current)},
                )
            size = tree_size or current
            if not leaf_index < size <= current:
                raise InvalidArgument(
                    "TREE_SIZE_INVALID",
                    "tree_size must include the leaf and not exceed the log",
                    field_violations=(FieldViolation("tree_size", "out of range"),),
                    metadata={"tree_size": str(current)},
                )
            entry = self._entries(conn, leaf_index, leaf_index + 1)[0]
            path = merkle.inclusion_proof(leaf_index, size, lambda k: _fetch_nodes(conn, k))
            head = self._signed_head(conn, size, current)
        return entry, path, head

    def consistency_proof(
        self, first_size: int, second_size: int = 0
    ) -> tuple[list[bytes], merkle.TreeHead]:
        current = self.tree_size()
        second = self._check_size(second_size or current, current, "second_tree_size")
        first = self._check_size(first_size, second, "first_tree_size")
        with self._reader() as conn:
            proof = merkle.consistency_proof(first, second, lambda k: _fetch_nodes(conn, k))
            head = self._signed_head(conn, second, current)
        return proof, head

    def log_entries(self, start: int, end: int) -> list[LoggedEntry]:
        current = self.tree_size()
        if not 0 <= start < end or end - start > MAX_LOG_ENTRIES or start >= current:
            raise InvalidArgument(
                "RANGE_INVALID",
                f"need 0 <= start < end <= start + {MAX_LOG_ENTRIES}, start < size",
                field_violations=(FieldViolation("end", "out of range"),),
                metadata={"tree_size": str(current)},
            )
        with self._reader() as conn:
            return self._entries(conn, start, min(end, current))

    @staticmethod
    def _entries(conn: Connection, start: int, end: int) -> list[LoggedEntry]:
        return [
            LoggedEntry(
                row.leaf_index,
                row.document_id,
                merkle.LogEventType(row.event_type),
                bytes(row.leaf_data),
            )
            for row in conn.execute(
                sa.select(_LEAVES)
                .where(_LEAVES.c.leaf_index >= start, _LEAVES.c.leaf_index < end)
                .order_by(_LEAVES.c.leaf_index)
            )
        ]


def _busy() -> Unavailable:
    """The database is busy (another writer, SQLite's lock, a lost race): clients retry."""
    return Unavailable("STORAGE_BUSY", "the registry database is busy; retry with the same key")


def _documents(rows: Iterable[Any]) -> dict[str, Document]:
    """Documents from rows of ``_WITH_HISTORY``: one row per status change, in order."""
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        history = grouped.get(row.document_id)
        if history is None:
            grouped[row.document_id] = [row]
        else:
            history.append(row)
    documents: dict[str, Document] = {}
    for document_id, history in grouped.items():
        row = history[0]
        documents[document_id] = Document(
            document_id=document_id,
            sha256=bytes(row.sha256),
            issuer=row.issuer,
            document_type=row.document_type,
            subject=row.subject,
            signer_certificate_sha256=rules.unpack_fingerprints(
                bytes(row.signer_certificate_sha256)
            ),
            valid_from_ms=row.valid_from_ms,
            valid_until_ms=row.valid_until_ms,
            metadata=json.loads(row.metadata_json),
            registered_at_ms=row.registered_at_ms,
            history=tuple(
                StatusChange(
                    status=DocumentStatus(change.c_status),
                    changed_at_ms=change.c_changed_at_ms,
                    leaf_index=change.c_leaf_index,
                    actor=change.c_actor,
                    reason=RevocationReason(change.c_reason) if change.c_reason else None,
                    reason_text=change.c_reason_text,
                    superseded_by=change.c_superseded_by,
                )
                for change in history
            ),
            supersedes=row.supersedes,
        )
    return documents


def _document_row(document: Document) -> dict[str, Any]:
    return {
        "document_id": document.document_id,
        "sha256": document.sha256,
        "issuer": document.issuer,
        "document_type": document.document_type,
        "subject": document.subject,
        "signer_certificate_sha256": rules.pack_fingerprints(document.signer_certificate_sha256),
        "valid_from_ms": document.valid_from_ms,
        "valid_until_ms": document.valid_until_ms,
        "metadata_json": json.dumps(dict(document.metadata), sort_keys=True, ensure_ascii=False),
        "status": document.status.value if document.history else DocumentStatus.REGISTERED.value,
        "registered_at_ms": document.registered_at_ms,
        "supersedes": document.supersedes,
    }


def _change_row(document_id: str, seq: int, change: StatusChange) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "seq": seq,
        "status": change.status.value,
        "changed_at_ms": change.changed_at_ms,
        "leaf_index": change.leaf_index,
        "actor": change.actor,
        "reason": change.reason.value if change.reason else "",
        "reason_text": change.reason_text,
        "superseded_by": change.superseded_by,
    }


def _sqlite_cache(dbapi_connection: Any, _record: Any) -> None:
    # 64 MiB of page cache per connection (SQLite's default is 2 MiB): random document ids and
    # digests touch the whole of every index.
    dbapi_connection.execute("PRAGMA cache_size=-65536")


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
