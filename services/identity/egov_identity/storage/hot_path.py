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
invalidated so the pool reconnects; a write commits only when its block returns, and is rolled
back otherwise.

On SQLite a write transaction runs in a :class:`~egov_common.db.WriterTurn`, as the keys' and the
registry's do: every commit syncs the WAL, holding SQLite's write lock meanwhile, and a second
worker process that found the lock taken would sleep in SQLite's busy handler (1, 2, 5, 10 ms
...) instead of taking its turn as soon as the lock is free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

import sqlalchemy as sa
from egov_common.db import CompiledStatement, WriterTurn
from sqlalchemy.engine import Engine

from egov_identity.storage import tables as t

__all__ = ["HotConnection", "HotPath"]


def _b(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


class Statements:
    """Every hot-path statement of one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        r, c, p, j = t.refresh_tokens, t.authorization_codes, t.persons, t.used_jtis
        self.insert_jti = CompiledStatement(sa.insert(j), dialect)
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
            .values(used_at=_b("now"), family_id=_b("family_id")), dialect)
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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[HotConnection]:
        """The block's statements commit together when it returns; otherwise none of them.
        On SQLite the block runs in the writers' turn (:attr:`HotPath.turn`)."""
        turn = self._hot.turn
        with turn if turn is not None else contextlib.nullcontext():
            try:
                yield self
                try:
                    self._connection.commit()
                except self._hot.driver_error as exc:
                    raise self._hot.wrapped(exc, self._connection, self._cursor, "COMMIT") from exc
            except BaseException:
                with contextlib.suppress(Exception):
                    self._connection.rollback()
                raise

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._cursor.close()
        self._connection.close()  # back to the pool (which rolls back), or dropped if invalid


class HotPath:
    """Runs :class:`Statements` on ``engine``'s pooled connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self.sql = Statements(engine.dialect)
        self.driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        #: Writers' turns on a SQLite database, ``None`` on PostgreSQL (its row locks suffice,
        #: and one write at a time per process would only add waiting).
        self.turn = WriterTurn(engine.url) if engine.dialect.name == "sqlite" else None

    def after_fork(self) -> None:
        """In a forked child: a turn of its own (see :meth:`WriterTurn.after_fork`)."""
        if self.turn is not None:
            self.turn.after_fork()

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

    @contextlib.contextmanager
    def write(self) -> Iterator[HotConnection]:
        """A connection whose statements in the block commit together, or not at all."""
        with self.connect() as connection, connection.transaction():
            yield connection

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
