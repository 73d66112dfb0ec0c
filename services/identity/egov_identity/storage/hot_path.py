"""The token endpoint's statements, compiled once per dialect and run on the driver's cursor.

A grant runs a handful of point lookups and writes by primary key (the client's assertion
``jti``, the refresh token or code being consumed, its successor, the person). Built and
executed through SQLAlchemy each time, the statement construction, cache-key walk and result
processing cost several times the query itself on SQLite (the registry measured the same, see
``egov_registry.storage.store``). These statements are the same Core constructs as the rest of
the service uses, compiled once for the engine's dialect (SQLite or PostgreSQL); their columns
(text, numbers) need no result processing with either driver. A grant uses one pooled
connection for its reads and its write (one pool checkout, and on PostgreSQL one pre-ping).

:class:`HotPath` keeps SQLAlchemy's behaviour where the rest of the service relies on it:
driver errors are raised as the matching ``sqlalchemy.exc`` class (``IntegrityError`` for a
replayed ``jti``, ``OperationalError`` with ``connection_invalidated`` for a database out of
reach), naming the statement but never its parameters; a connection the database dropped is
invalidated so the pool reconnects; a write (:meth:`HotConnection.commit`) has committed when it
returns, and left nothing behind when it raised.

On SQLite, writes are committed in groups (:class:`~egov_common.group_commit.GroupCommit`), as
the keys' and the registry's are: a commit syncs the WAL while holding the database's only write
lock, so grants waiting while another commits go in together, each in a savepoint of its own so
that one failing (a replayed ``jti``) undoes only its own statements. A group commits in a
:class:`~egov_common.db.WriterTurn`: a second worker process that found SQLite's lock taken
would otherwise sleep in its busy handler (1, 2, 5, 10 ms ...) instead of taking its turn as soon
as the lock is free. On PostgreSQL each grant commits on its own connection, concurrently with
the others: the server syncs concurrent commits together itself, and grouping them in one
process only serialised them (10-30 % fewer grants, measured).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from egov_common.db import CompiledStatement, WriterTurn
from egov_common.group_commit import GroupCommit
from sqlalchemy.engine import Engine

from egov_identity.storage import tables as t

__all__ = ["HotConnection", "HotPath"]

_T = TypeVar("_T")


def _b(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


class Statements:
    """Every hot-path statement of one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        r, c, p, j = t.refresh_tokens, t.authorization_codes, t.persons, t.used_jtis
        self.insert_jti = CompiledStatement(sa.insert(j), dialect)
        self.revoke_access = CompiledStatement(sa.insert(t.revoked_access_tokens), dialect)
        self.refresh_token = CompiledStatement(
            sa.select(r).where(r.c.token_hash == _b("token_hash")), dialect)
        # Consumed only while neither used nor revoked: a token revoked after it was read is
        # not rotated (RFC 9700 section 4.14.2).
        self.consume_refresh = CompiledStatement(
            sa.update(r).where(r.c.token_hash == _b("token_hash"), r.c.used_at.is_(None),
                               r.c.revoked_at.is_(None)).values(used_at=_b("now")), dialect)
        self.insert_refresh = CompiledStatement(sa.insert(r), dialect)
        self.revoke_family = CompiledStatement(
            sa.update(r).where(r.c.family_id == _b("family_id"), r.c.revoked_at.is_(None))
            .values(revoked_at=_b("now")), dialect)
        self.code = CompiledStatement(sa.select(c).where(c.c.code_hash == _b("code_hash")), dialect)
        self.consume_code = CompiledStatement(
            sa.update(c).where(c.c.code_hash == _b("code_hash"), c.c.used_at.is_(None))
            .values(used_at=_b("now"), family_id=_b("family_id"), access_jti=_b("access_jti")),
            dialect)
        self.person = CompiledStatement(
            sa.select(p).where(p.c.person_id == _b("person_id")), dialect)


class HotConnection:
    """One pooled connection of :class:`HotPath` (one thread's, for one grant)."""

    __slots__ = ("_connection", "_cursor", "_hot")

    def __init__(self, hot: HotPath, connection: Any) -> None:
        self._hot = hot
        self._connection = connection
        self._cursor = connection.cursor()

    def one(self, statement: CompiledStatement, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row, as a dict by column name; ``None`` when there is none. (Every row is
        fetched: on SQLite an unfinished statement would keep its read transaction open.)"""
        try:
            self._cursor.execute(statement.sql, statement.params(values))
            rows = self._cursor.fetchall()
        except self._hot.driver_error as exc:
            raise self._hot.wrapped(exc, self._connection, self._cursor, statement.sql) from exc
        return dict(zip(statement.names, rows[0], strict=True)) if rows else None

    def run(self, statement: CompiledStatement, values: Mapping[str, Any]) -> int:
        """Execute; returns the number of rows changed."""
        try:
            self._cursor.execute(statement.sql, statement.params(values))
        except self._hot.driver_error as exc:
            raise self._hot.wrapped(exc, self._connection, self._cursor, statement.sql) from exc
        return int(self._cursor.rowcount)

    def commit(self, work: Callable[[HotConnection], _T]) -> _T:
        """Run ``work``'s statements in a transaction that has committed when this returns (and
        then return what ``work`` returned), or raise what ``work`` raised, none of its
        statements kept. ``work`` gets the connection its group commits on, perhaps another
        caller's, and must run only writes, with nothing but their row counts to go on: it may
        run again after a failed group, alone."""
        job = _Job(work, self)
        if self._hot.group is not None:
            self._hot.group.submit(job)
        else:
            self._hot._commit_jobs(self, [job])
        if job.error is not None:
            raise job.error
        return cast(_T, job.result)

    def _control(self, statement: str) -> None:
        try:
            self._cursor.execute(statement)
        except self._hot.driver_error as exc:
            raise self._hot.wrapped(exc, self._connection, self._cursor, statement) from exc

    def _commit_now(self) -> None:
        try:
            self._connection.commit()
        except self._hot.driver_error as exc:
            raise self._hot.wrapped(exc, self._connection, self._cursor, "COMMIT") from exc

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._cursor.close()
        self._connection.close()  # back to the pool (which rolls back), or dropped if invalid


class _Job(Generic[_T]):
    """One caller's writes, and what became of them."""

    __slots__ = ("connection", "error", "result", "thread", "work")

    def __init__(self, work: Callable[[HotConnection], _T], connection: HotConnection) -> None:
        self.work = work
        self.connection = connection
        self.thread = threading.get_ident()
        self.result: _T | None = None
        self.error: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.result, self.error = None, error


class HotPath:
    """Runs :class:`Statements` on ``engine``'s pooled connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self.sql = Statements(engine.dialect)
        self.driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        #: On SQLite, the writers' turn and the group commit that takes it; ``None`` on
        #: PostgreSQL, whose row locks order the writers, who commit concurrently and alone.
        self.turn: WriterTurn | None = None
        self.group: GroupCommit[_Job[Any]] | None = None
        if engine.dialect.name == "sqlite":
            turn = self.turn = WriterTurn(engine.url)
            self.group = GroupCommit(self._commit_group, turn=lambda: turn, failed=_Job.fail)

    def after_fork(self) -> None:
        """In a forked child: a turn and a group of its own."""
        if self.turn is not None and self.group is not None:
            self.turn.after_fork()
            self.group.after_fork()

    def _commit_group(self, jobs: list[_Job[Any]]) -> None:
        """Commit ``jobs`` together (when that raises, the group commit tries each alone, on
        its own connection). Runs in the leader's thread, on its connection (the other callers
        wait, holding theirs)."""
        mine = threading.get_ident()
        leader = next((job.connection for job in jobs if job.thread == mine), jobs[0].connection)
        self._commit_jobs(leader, jobs)

    def _commit_jobs(self, db: HotConnection, jobs: list[_Job[Any]]) -> None:
        """One transaction on ``db``: each job's outcome recorded in it; raises only when the
        transaction itself failed (nothing of it kept)."""
        try:
            if self.turn is not None:  # SQLite: the write lock now, in the turn
                db._control("BEGIN IMMEDIATE")
            if len(jobs) == 1:
                job = jobs[0]
                job.result, job.error = None, None
                try:
                    job.result = job.work(db)
                except Exception as exc:
                    job.error = exc
                    with contextlib.suppress(Exception):  # job.error says what went wrong
                        db._connection.rollback()
                    return
            else:
                for job in jobs:
                    job.result, job.error = None, None
                    db._control("SAVEPOINT one_grant")
                    try:
                        job.result = job.work(db)
                    except Exception as exc:
                        job.error = exc
                        db._control("ROLLBACK TO SAVEPOINT one_grant")
                    db._control("RELEASE SAVEPOINT one_grant")
            db._commit_now()
        except BaseException:
            with contextlib.suppress(Exception):
                db._connection.rollback()
            raise

    @contextlib.contextmanager
    def connect(self) -> Iterator[HotConnection]:
        """A pooled connection for the block; what it did not commit is rolled back."""
        try:
            connection = self._engine.raw_connection()
        except self.driver_error as exc:
            raise self.wrapped(exc, None, None, None) from exc
        try:
            hot = HotConnection(self, connection)
        except BaseException:
            connection.close()
            raise
        try:
            yield hot
        finally:
            hot._close()

    def one(self, statement: CompiledStatement, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """:meth:`HotConnection.one` on a connection of its own."""
        with self.connect() as connection:
            return connection.one(statement, values)

    def commit(self, work: Callable[[HotConnection], _T]) -> _T:
        """:meth:`HotConnection.commit` on a connection of its own."""
        with self.connect() as connection:
            return connection.commit(work)

    def wrapped(self, exc: Exception, connection: Any, cursor: Any, statement: str | None
                ) -> BaseException:
        """``exc`` as the ``sqlalchemy.exc`` error SQLAlchemy itself would raise."""
        dbapi_connection = getattr(connection, "dbapi_connection", None)
        disconnected = bool(self._dialect.is_disconnect(cast(Any, exc), dbapi_connection,
                                                        cursor))
        if disconnected and connection is not None:
            connection.invalidate(exc)  # the pool opens a new connection next time
        return sa.exc.DBAPIError.instance(
            statement, None, exc, self.driver_error, hide_parameters=True,
            connection_invalidated=disconnected, dialect=self._dialect)
