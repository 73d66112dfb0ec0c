from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from egov_common.db import WriterTurn, make_engine, upgrade_to_head


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


def test_a_database_error_never_quotes_the_statements_parameters(tmp_path) -> None:
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


def test_a_compiled_statement_binds_by_name_keeps_literals_and_names_its_columns(tmp_path) -> None:
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
