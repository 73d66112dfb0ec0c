from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from egov_common.db import WalCheckpoints, WriterTurn, make_engine, upgrade_to_head


def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested/dir/x.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()


def test_upgrade_to_head_runs_migrations_from_a_folder(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(
        "from alembic import context\n"
        "connection = context.config.attributes['connection']\n"
        "context.configure(connection=connection)\n"
        "with context.begin_transaction():\n"
        "    context.run_migrations()\n"
    )
    (migrations / "script.py.mako").write_text("")
    (migrations / "versions" / "0001_first.py").write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        "revision = '0001'\n"
        "down_revision = None\n"
        "def upgrade():\n"
        "    op.create_table('thing', sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    url = f"sqlite:///{tmp_path}/db.sqlite"
    upgrade_to_head(url, migrations)
    upgrade_to_head(url, migrations)  # idempotent
    engine = make_engine(url)
    assert "thing" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_error_never_quotes_the_statements_parameters(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from egov_common.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (national_id TEXT PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO people VALUES (:n)"), {"n": "1101700230705"})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO people VALUES (:n)"), {"n": "1101700230705"})
    except sa.exc.IntegrityError as exc:
        assert "1101700230705" not in str(exc)
        assert "hidden" in str(exc)
    else:
        raise AssertionError("the duplicate row was accepted")
    finally:
        engine.dispose()


def test_a_compiled_statement_binds_by_name_keeps_literals_and_names_its_columns(
    tmp_path: Path,
) -> None:
    import sqlalchemy as sa
    from egov_common.db import CompiledStatement, make_engine

    meta = sa.MetaData()
    docs = sa.Table(
        "docs",
        meta,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("status", sa.String),
        sa.Column("n", sa.Integer),
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    meta.create_all(engine)
    insert = CompiledStatement(sa.insert(docs), engine.dialect)
    active = CompiledStatement(
        sa.select(docs.c.id, docs.c.n).where(
            docs.c.status == "active", docs.c.n > sa.bindparam("min")
        ),
        engine.dialect,
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        insert.execute_many(
            cursor,
            [
                {"id": "a", "status": "active", "n": 5},
                {"id": "b", "status": "revoked", "n": 9},
                {"id": "c", "status": "active", "n": 1},
            ],
        )
        assert insert.execute(cursor, {"id": "d", "status": "active", "n": 7}) == 1
        rows = active.rows(cursor, {"min": 2})
    finally:
        raw.close()
        engine.dispose()
    assert sorted((r.id, r.n) for r in rows) == [("a", 5), ("d", 7)]  # 'active' stayed bound


def test_writer_turn_locks_a_file_beside_a_sqlite_database_only(tmp_path: Path) -> None:
    on_file = WriterTurn(f"sqlite:///{tmp_path / 'service.db'}")
    assert on_file.path == f"{tmp_path / 'service.db'}.write-lock"
    assert WriterTurn("sqlite://").path is None
    assert WriterTurn("sqlite:///:memory:").path is None
    assert WriterTurn("postgresql+psycopg://db.internal/registry").path is None


def test_writer_turn_keeps_other_processes_out_until_released(tmp_path: Path) -> None:
    turn = WriterTurn(f"sqlite:///{tmp_path / 'service.db'}")
    other = os.open(f"{tmp_path / 'service.db'}.write-lock", os.O_RDWR | os.O_CREAT)
    try:
        with turn:
            with turn:  # re-entered by the same thread: no second lock, no deadlock
                pass
            with pytest.raises(BlockingIOError):  # another process's writer must wait
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the outer turn
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
        turn.close()


def test_writer_turn_gives_up_with_a_busy_error_instead_of_hanging(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    other = os.open(f"{tmp_path / 'service.db'}.write-lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer that does not let go
        with (
            pytest.raises(sa.exc.OperationalError, match="another process"),
            WriterTurn(url, timeout=0.2),
        ):
            pass
    finally:
        os.close(other)
    turn = WriterTurn(url, timeout=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turn:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(sa.exc.OperationalError, match="another thread"), turn:
            pass
    finally:
        release.set()
        holder.join(30)
    with turn:  # free again once the holder is done
        pass
    turn.close()


def _wal_restarts(database: Path) -> int:
    """How many times the WAL was started over: the checkpoint sequence in its header."""
    with open(f"{database}-wal", "rb") as wal:
        return int(struct.unpack(">I", wal.read(16)[12:16])[0])


def _blob_table(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
    return engine


@contextlib.contextmanager
def _checkpointed(database: Path) -> Iterator[tuple[WriterTurn, sa.Engine]]:
    """A SQLite file with a ``blobs`` table, a write engine whose WAL a checkpoint thread looks
    after every 20 ms, and that thread's writer turn; all closed at the end."""
    url = f"sqlite:///{database}"
    _blob_table(url).dispose()
    turn = WriterTurn(url)
    checkpoints = WalCheckpoints(url, turn, interval=0.02)
    engine = make_engine(url)
    checkpoints.attach(engine)
    try:
        yield turn, engine
    finally:
        checkpoints.close()
        turn.close()
        engine.dispose()


def test_wal_checkpoints_start_the_wal_over_while_writers_never_pause(tmp_path: Path) -> None:
    database = tmp_path / "service.db"
    url = f"sqlite:///{database}"
    creator = _blob_table(url)
    turn = WriterTurn(url)
    checkpoints = WalCheckpoints(url, turn, interval=0.02, size_limit=64 * 1024)
    engine = make_engine(url)
    checkpoints.attach(engine)
    written = 0
    try:
        with engine.connect() as conn:  # commits no longer checkpoint on their own
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        first = _wal_restarts(database)
        until = time.monotonic() + 1.0
        while time.monotonic() < until:  # one writer after another, never a pause
            with turn, engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO blobs (data) VALUES (?)", (os.urandom(8192),))
            written += 1
        # A checkpoint outside the turn never catches up with such writers, so the WAL would
        # never start over; the one in the turn lets it, again and again.
        assert _wal_restarts(database) - first >= 3
        time.sleep(0.2)  # a checkpoint with nothing written meanwhile: the WAL is all copied
        with turn, engine.begin() as conn:  # so this writer starts it over, cut back first
            conn.exec_driver_sql("INSERT INTO blobs (data) VALUES (x'00')")
        assert os.path.getsize(f"{database}-wal") <= 64 * 1024
    finally:
        checkpoints.close()
        turn.close()
        engine.dispose()
    with creator.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == written + 1
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    creator.dispose()


class _ScriptedWal:
    """Stands in for SQLite's answers to ``PRAGMA wal_checkpoint(PASSIVE)``, in order, and
    notes each pass as made in the writers' turn or outside it, and each sync of the file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: list[tuple[int, int, int]]):
        self.answers = answers
        self.events: list[str] = []
        self.in_turn = False
        monkeypatch.setattr(WalCheckpoints, "_checkpoint", staticmethod(self._pass))
        monkeypatch.setattr(os, "fdatasync", lambda fd: self.events.append("sync"))

    def _pass(self, _connection: object) -> tuple[int, int, int]:
        self.events.append("turn" if self.in_turn else "pass")
        return self.answers.pop(0)

    def __enter__(self) -> None:
        self.in_turn = True

    def __exit__(self, *exc: object) -> None:
        self.in_turn = False


def _scripted_round(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answers: list[tuple[int, int, int]],
    last: tuple[int, int] | None = None,
) -> tuple[list[str], tuple[int, int] | None]:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    _blob_table(url).dispose()
    wal = _ScriptedWal(monkeypatch, answers)
    checkpoints = WalCheckpoints(url, wal)
    after = checkpoints._round(sqlite3.connect(":memory:"), last)
    assert wal.answers == []  # every scripted answer was asked for
    return wal.events, after


def test_wal_checkpoints_catch_up_outside_the_turn_before_the_short_pass_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writers append 2,000 frames during the first pass, then 500, then 100: passes go on
    # outside the turn until one copied few, and the database is synced before them, so the
    # pass in the turn has only what came during the last one and its own syncs.
    events, last = _scripted_round(
        tmp_path,
        monkeypatch,
        [
            (0, 10_000, 10_000),
            (0, 12_000, 12_000),
            (0, 12_500, 12_500),
            (0, 12_600, 12_600),
            (0, 12_650, 12_650),
        ],
    )
    assert events == ["pass", "sync", "pass", "pass", "pass", "turn"]
    assert last == (12_650, 12_650)


def test_wal_checkpoints_stop_catching_up_when_writers_outpace_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [(0, 10_000 * n, 10_000 * n) for n in range(1, 6)]
    events, _ = _scripted_round(tmp_path, monkeypatch, answers)
    assert events == ["pass", "sync"] + ["pass"] * WalCheckpoints.CATCH_UP_PASSES + ["turn"]


def test_wal_checkpoints_go_to_the_turn_at_once_when_a_reader_holds_frames_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # busy: a reader's snapshot needs frames not yet copied; no pass outside can finish.
    events, _ = _scripted_round(tmp_path, monkeypatch, [(1, 10_000, 8_000), (0, 10_000, 10_000)])
    assert events == ["pass", "sync", "turn"]


def test_wal_checkpoints_neither_sync_nor_take_the_turn_when_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, last = _scripted_round(
        tmp_path, monkeypatch, [(0, 12_650, 12_650)], last=(12_650, 12_650)
    )
    assert events == ["pass"]
    assert last == (12_650, 12_650)


def test_wal_checkpoints_count_frames_afresh_when_a_writer_started_the_wal_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The WAL started over between passes: 40 frames copied in the new WAL are few.
    events, _ = _scripted_round(
        tmp_path, monkeypatch, [(0, 10_000, 10_000), (0, 40, 40), (0, 60, 60)]
    )
    assert events == ["pass", "sync", "pass", "turn"]


def test_wal_checkpoints_never_create_a_database_that_was_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "service.db"
    with _checkpointed(database) as (_turn, engine):
        with caplog.at_level(logging.WARNING, logger="egov_common.db"):
            with engine.begin() as conn:  # the first write connection starts the thread
                conn.exec_driver_sql("INSERT INTO blobs (data) VALUES (x'01')")
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            time.sleep(0.3)  # about 15 intervals
        assert not database.exists()
        failures = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
        assert len(failures) == 1  # once, not at every interval


def test_wal_checkpoints_survive_a_failed_sync_and_try_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "service.db"
    failures = iter([True, True])  # the disk fails the first two syncs of the database file
    real_sync = os.fdatasync

    def flaky_sync(fd: int) -> None:
        if next(failures, False):
            raise OSError(errno.EIO, "Input/output error")
        real_sync(fd)

    monkeypatch.setattr(os, "fdatasync", flaky_sync)
    with _checkpointed(database) as (turn, engine):
        with caplog.at_level(logging.WARNING, logger="egov_common.db"):
            with turn, engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO blobs (data) VALUES (x'01')")
            first = _wal_restarts(database)
            time.sleep(0.3)  # about 15 intervals: two fail, then one copies the whole WAL
            with turn, engine.begin() as conn:  # so this writer starts the WAL over
                conn.exec_driver_sql("INSERT INTO blobs (data) VALUES (x'02')")
        assert _wal_restarts(database) > first
        failed = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
        assert len(failed) == 1 and "Input/output error" in failed[0].getMessage()


def test_wal_checkpoints_leave_postgresql_and_memory_databases_alone() -> None:
    turn = WriterTurn("sqlite://")
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://db.internal/registry"):
        checkpoints = WalCheckpoints(url, turn)
        assert checkpoints.path is None
        engine = sa.create_engine("sqlite://")
        checkpoints.attach(engine)
        with engine.connect() as conn:  # SQLite's own default stays, and no thread starts
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        engine.dispose()
        assert checkpoints._thread is None
