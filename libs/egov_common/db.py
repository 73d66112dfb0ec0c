"""Database engines and migrations: SQLite for development, PostgreSQL in production."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.resources
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler

from egov_common.executor import blocking
from egov_common.forking import held_during_forks

__all__ = [
    "CompiledStatement",
    "HotConnections",
    "WalCheckpoints",
    "WriterTurn",
    "make_engine",
    "migration_transaction",
    "migrations_dir",
    "run_alembic_env",
    "upgrade_to_head",
]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

#: How long a SQLite writer waits for another writer's lock (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_file(url: str | sa.URL) -> str | None:
    """The database file of a SQLite URL, else ``None`` (PostgreSQL, in-memory, URI)."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else database


def make_engine(url: str, **engine_kwargs: Any) -> Engine:
    """A SQLAlchemy engine for ``url``.

    SQLite: the parent directory is created, and every connection gets WAL journaling synced at
    every commit (a committed transaction survives a power cut), enforced foreign keys and a
    busy timeout so several processes on one file wait instead of failing.
    PostgreSQL: a pre-pinged connection pool. Either way, errors never quote the statement's
    parameters (they hold login names, identifiers and hashes that must stay out of logs).
    """
    engine_kwargs.setdefault("hide_parameters", True)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = _sqlite_file(parsed)
        if database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        connect_args.update(engine_kwargs.pop("connect_args", {}))
        engine = sa.create_engine(url, connect_args=connect_args, **engine_kwargs)
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    engine_kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **engine_kwargs)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a commit returns only once the WAL is on disk. NORMAL would sync it only at
        # checkpoints, so a power cut or kernel crash could undo transactions already
        # acknowledged: registrations a client was told are registered, leaves under a tree
        # head the registry signed (a log that later grows differently from it looks
        # forked), audit records of key operations. PostgreSQL's default commit syncs too.
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


class HotConnections:
    """DB-API connections of ``engine`` kept checked out between hot-path calls.

    A pool checkout and return cost more than a point query on SQLite, and on PostgreSQL the
    return's rollback is a round trip: a connection that ended its work cleanly (no transaction
    open) is kept for the next call instead, up to ``keep`` of them (list append and pop are
    atomic). A connection that a driver error shows dead is invalidated with every kept one and
    the pool's older ones (a database that went away took them all), as SQLAlchemy's own
    ``Connection`` does; :meth:`read` then tries once more on a fresh one. A forked worker calls
    :meth:`after_fork`: the parent's connections are dropped, never used nor closed (closing
    one would end the parent's session).
    """

    def __init__(self, engine: Engine, *, keep: int = 8) -> None:
        self.engine = engine
        self.keep = keep
        self.driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._idle: list[Any] = []

    def lease(self) -> Any:
        """A kept connection, else one from the pool (the pool's errors propagate)."""
        try:
            return self._idle.pop()
        except IndexError:
            return self.engine.raw_connection()

    def give_back(self, connection: Any, *, clean: bool) -> None:
        """Keep a connection that ended cleanly; return any other to the pool, which resets or
        replaces it."""
        if clean and len(self._idle) < self.keep:
            self._idle.append(connection)
        else:
            connection.close()

    def drop_if_dead(self, connection: Any, exc: BaseException) -> bool:
        """True (and everything invalidated, see the class) when ``exc`` shows ``connection``
        dead."""
        dialect: Any = self.engine.dialect
        if not isinstance(exc, self.driver_error) or not dialect.is_disconnect(
            exc, connection.dbapi_connection, None
        ):
            return False
        self.engine.pool._invalidate(connection, exc)  # the pool's older ones are replaced
        idle, self._idle = self._idle, []
        for kept in idle:
            with contextlib.suppress(Exception):
                kept.invalidate(exc)
        return True

    def read(self, work: Callable[[Any], _T]) -> _T:
        """``work(cursor)`` on a kept or pooled connection, outside any transaction (a read,
        or statements that commit on their own); on a connection found dead, once more on a
        fresh one. Driver errors propagate as the driver raised them."""
        for attempt in (1, 2):
            connection = self.lease()
            clean = False
            try:
                cursor = connection.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
                clean = True
                return result
            except self.driver_error as exc:
                if not self.drop_if_dead(connection, exc) or attempt == 2:
                    raise
            finally:
                self.give_back(connection, clean=clean)
        raise AssertionError("unreachable")

    def after_fork(self) -> None:
        _INHERITED.extend(self._idle)
        self._idle = []
        self.engine.dispose(close=False)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                connection.close()
        self.engine.dispose()


#: Connections a forked worker inherited: never used, never closed (that would end the
#: parent's session), kept referenced so no finalizer closes them either.
_INHERITED: list[Any] = []


class WriterTurn:
    """One writer at a time on a database: ``with turn:`` around a write transaction.

    This process's threads take turns on a re-entrant lock. On a SQLite file the processes also
    take turns, on an exclusive ``flock`` of ``<database>.write-lock`` beside it, polled every
    50 us to 1 ms while another process writes, where SQLite's busy handler would have the
    writer sleep 1, 2, 5, 10, ... up to 100 ms between tries (a second worker process then slowed
    writes down). ``BEGIN IMMEDIATE`` still takes SQLite's own lock, which keeps other writers
    (tools, migrations) out; on PostgreSQL only the in-process lock is taken. Waiting for either
    is bounded by ``timeout`` seconds, then ``sqlalchemy.exc.OperationalError`` (the database is
    busy, as SQLite's own lock reports it), so a writer that hangs never ties up every thread of
    the others. The kernel releases the file lock of a process that dies. Re-entering in the
    thread that holds the turn does not take the file lock again. A forked child calls
    :meth:`after_fork` before its first write (``egov_common.forking.in_forked_children``): it
    must not take the parent's lock, nor share the parent's open lock file, whose lock would
    then be both of theirs.
    """

    def __init__(self, url: str | sa.URL, *, timeout: float = 30.0) -> None:
        database = _sqlite_file(url)
        #: The lock file, or ``None`` (PostgreSQL, in-memory SQLite).
        self.path = None if database is None else f"{database}.write-lock"
        self.timeout = timeout
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(blocking=False):
            with blocking():  # waiting, not running: another call may run meanwhile
                if not self._lock.acquire(timeout=self.timeout):
                    raise self._busy("another thread of this process")
        try:
            if self._depth == 0 and self.path is not None:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._lock_file(self._fd, deadline)
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _lock_file(self, fd: int, deadline: float) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        pause = 0.00005
        with blocking():  # another process writes: another call may run meanwhile
            while True:
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._busy("another process") from None

    def _busy(self, holder: str) -> sa.exc.OperationalError:
        return sa.exc.OperationalError(
            "write turn",
            None,
            TimeoutError(f"{holder} held the write turn for more than {self.timeout:g} s"),
        )

    def after_fork(self) -> None:
        """In a forked child: a fresh lock, and the parent's lock file forgotten (closing this
        copy leaves the parent's lock alone); the child opens its own on its first write."""
        self._lock = threading.RLock()
        self._depth = 0
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class WalCheckpoints:
    """A SQLite file's WAL checkpointed by a thread of its own, not by a committing writer.

    By default SQLite has the commit that takes the WAL past 1,000 pages copy the WAL back into
    the database and sync both files before it returns: inside that writer's turn
    (:class:`WriterTurn`), so every other writer, in every process, waits for it. A hot write
    path writing tens of pages per commit pays that every few dozen commits, and copies a hot
    page (an index's root, the log's frontier) once per checkpoint, many times a second.

    :meth:`attach` turns that off on a write engine's connections (``wal_autocheckpoint=0``);
    a daemon thread, started by the first such connection, checkpoints every ``interval``
    seconds instead, in two steps:

    1. a ``PASSIVE`` checkpoint while the writers go on: it copies what the WAL holds and syncs,
       and neither waits for nor blocks readers and writers. While a pass copied many frames
       that writers appended during the one before, another follows (``CATCH_UP_PASSES``);
    2. if anything was written since the last time, one more in the writers' ``turn``: it copies
       only what they appended during the last pass of step 1, so the WAL is then fully copied
       and the next writer starts it over. Without that step writers that never pause would
       keep the WAL growing (by 0.94 GB in 12 s at the registry's store). With a single pass
       in step 1, and the database file left for this one to sync, it held the turn for 45-57
       ms each interval under 8 threads registering at the registry's store; now 22-28 ms,
       about half of it the two syncs that cannot leave it.

    The WAL file is cut back to ``size_limit`` bytes when it starts over
    (``journal_size_limit``). Each worker process runs its own thread once it writes,
    :meth:`close` makes a last checkpoint, and a failed one is logged and tried again at the
    next interval. Does nothing for PostgreSQL or in-memory SQLite. No process forks while the
    thread is inside SQLite (``held_during_forks``); a forked child calls :meth:`after_fork`.
    """

    #: Further passes outside the turn, at most, while the one before copied more than
    #: FEW_FRAMES frames (pages) that writers appended during the pass before it.
    CATCH_UP_PASSES = 3
    FEW_FRAMES = 256

    def __init__(
        self,
        url: str | sa.URL,
        turn: contextlib.AbstractContextManager[object],
        *,
        interval: float = 0.5,
        size_limit: int = 64 * 1024 * 1024,
    ) -> None:
        self.path = _sqlite_file(url)
        self.turn = turn
        self.interval = interval
        self.size_limit = size_limit
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inside = threading.Lock()  # held by the thread while it calls SQLite
        held_during_forks(self, lambda checkpoints: checkpoints._inside)

    def attach(self, engine: Engine) -> None:
        """Have ``engine``'s connections leave checkpoints to this thread (a write engine)."""
        if self.path is not None:
            sa.event.listen(engine, "connect", self._on_connect)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
        dbapi_connection.execute(f"PRAGMA journal_size_limit={self.size_limit}")
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="wal-checkpoints", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        assert self.path is not None
        connection: sqlite3.Connection | None = None
        last: tuple[int, int] | None = None  # (frames, copied) after the last full checkpoint
        failing = False
        try:
            while not self._stop.wait(self.interval):
                try:
                    with self._inside:
                        if connection is None:
                            # mode=rw: a database removed meanwhile is not created afresh.
                            connection = sqlite3.connect(
                                Path(self.path).absolute().as_uri() + "?mode=rw",
                                uri=True,
                                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                                isolation_level=None,
                            )
                        last = self._round(connection, last)
                    failing = False
                except (sqlite3.Error, sa.exc.OperationalError, OSError) as exc:
                    if not failing:  # once per run of failures, not every interval
                        _log.warning("WAL checkpoint failed, will retry: %s", exc)
                    failing = True
        finally:
            if connection is not None:
                with self._inside:
                    with contextlib.suppress(sqlite3.Error):
                        self._checkpoint(connection)
                    connection.close()

    def _round(
        self, connection: sqlite3.Connection, last: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        """One interval's checkpoints; (frames, copied) after the last one made in the turn."""
        busy, frames, copied = self._checkpoint(connection)
        if (frames, copied) == last:
            return last  # nothing written since the last pass in the turn
        # The pass that copies the WAL's last frame also syncs the database file, with every
        # page the passes before it copied: tens of ms of disk writes, too long for the turn.
        self._sync_database()
        # Writers appended to the WAL meanwhile. Copy that outside the turn too, while it is
        # much, so the pass in the turn, which holds every writer in every process, only has
        # the last few frames (and the two syncs) left to do.
        for _ in range(self.CATCH_UP_PASSES):
            if busy:  # a reader still needs older frames: no pass can finish now
                break
            before = copied
            busy, frames, copied = self._checkpoint(connection)
            # A writer may have started the WAL over meanwhile (all copied, no reader in it).
            if (copied - before if copied >= before else copied) <= self.FEW_FRAMES:
                break
        with self.turn:
            _busy, frames, copied = self._checkpoint(connection)
        return (frames, copied)

    def _sync_database(self) -> None:
        assert self.path is not None
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
        """One ``PASSIVE`` checkpoint: (1 if it could not complete, frames in the WAL, frames
        copied into the database)."""
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def after_fork(self) -> None:
        """In a forked child: no thread (none survives a fork); its first write starts one."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._inside = threading.Lock()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after a last checkpoint."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)


def migrations_dir(migrations: str | Path) -> Path:
    """The directory of an Alembic script folder given as a path or a package name.

    ``"egov_registry.storage.migrations"`` resolves to that package's folder, which must hold
    ``env.py`` and ``versions/``.
    """
    if isinstance(migrations, Path):
        return migrations
    if "/" in migrations or migrations.startswith("."):
        return Path(migrations)
    module = importlib.import_module(migrations)
    return Path(str(importlib.resources.files(module)))


def upgrade_to_head(url: str, migrations: str | Path) -> None:
    """Run Alembic migrations of ``migrations`` (package name or folder) up to ``head``.

    No ``alembic.ini`` is needed. The database URL reaches ``env.py`` as
    ``config.get_main_option("sqlalchemy.url")`` and, as an already configured connection inside
    :func:`migration_transaction`, as ``config.attributes["connection"]`` (use it when present:
    it carries the SQLite pragmas and the transaction).
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir(migrations)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url)
    try:
        with migration_transaction(engine, str(migrations)) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def run_alembic_env(target_metadata: sa.MetaData, migrations: str, **options: Any) -> None:
    """The body of every service's Alembic ``env.py``, so each way in migrates alike.

    Under :func:`upgrade_to_head` it runs on the connection handed over in
    ``config.attributes["connection"]``. From the ``alembic`` command line it opens an engine on
    ``sqlalchemy.url`` with :func:`make_engine` and runs inside :func:`migration_transaction`
    (named ``migrations``, as ``upgrade_to_head`` names it, so both take the same PostgreSQL
    lock). Offline (``--sql``) it renders the statements. ``options`` go to
    ``context.configure`` (``render_as_batch`` and the like).
    """
    from alembic import context

    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: sa.Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with migration_transaction(engine, migrations) as own:
            run(own)
    finally:
        engine.dispose()


@contextlib.contextmanager
def migration_transaction(engine: Engine, name: str) -> Iterator[sa.Connection]:
    """A connection for running migrations, all of them in one transaction, committed at the end.

    On PostgreSQL the transaction holds an advisory lock named after ``name`` (the migrations),
    so replicas (or a migration Job and a starting pod) take turns: the second one finds the
    schema at head and does nothing.

    On SQLite, ``BEGIN IMMEDIATE`` keeps other writers out and makes the migrations atomic
    (SQLite's DDL is transactional). Foreign keys are not enforced statement by statement
    meanwhile: changing a table there means building it anew and dropping the old one (Alembic's
    batch mode), and dropping a table others refer to would fail. ``PRAGMA foreign_key_check``
    runs before the commit instead, and any dangling reference rolls everything back
    (``sqlalchemy.exc.IntegrityError``). SQLite only switches foreign keys off outside a
    transaction, so this must be the connection's first work.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _migration_lock_key(name)}
            )
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    table, rowid, parent, _ = dangling[0]
                    raise sa.exc.IntegrityError(
                        "PRAGMA foreign_key_check",
                        None,
                        sqlite3.IntegrityError(
                            f"{len(dangling)} rows refer to missing rows, the first in "
                            f"{table} (rowid {rowid}) to {parent}; nothing was migrated"
                        ),
                    )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite:  # a connection broken meanwhile is closed below anyway
                with contextlib.suppress(sa.exc.DBAPIError):
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _migration_lock_key(migrations: str | Path) -> int:
    """A stable 32-bit advisory-lock key per migrations package (the same in every process)."""
    return zlib.crc32(str(migrations).encode())


class CompiledStatement:
    """A Core statement compiled once for one dialect and run on the DB-API cursor.

    For hot paths only (document reads, SignHash, token grants): SQLAlchemy's per-execution work
    (statement cache key, parameter and result processing) costs several times a point query on
    SQLite. Only for statements whose columns need no type processing with either driver
    (sqlite3, psycopg): text, integers, bytes. Rows of a select come back as named tuples
    (duplicate column names renamed ``_<position>``), other rows as plain tuples.
    """

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        self._positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Values written into the statement (``id == 1``) are bound parameters too.
        self._literals = {k: v for k, v in compiled.params.items() if v is not None}
        self.names: tuple[str, ...] = ()
        self._row: Any = None
        if isinstance(statement, sa.Select):
            self.names = tuple(str(column.key) for column in statement.selected_columns)
            self._row = namedtuple("Row", self.names, rename=True)._make  # type: ignore[attr-defined]

    def params(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters (a tuple for positional dialects) from named values."""
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

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[Any]:
        cursor.execute(self.sql, self.params(values))
        fetched = cursor.fetchall()
        make = self._row
        return [make(row) for row in fetched] if make is not None else list(fetched)
