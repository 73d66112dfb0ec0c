"""The token endpoint's writes: on SQLite committed in groups, where one grant's failure undoes
only its own statements, in the writers' turn that other worker processes take, so a worker
that finds another one committing waits for the turn, not in SQLite's busy handler (which
sleeps 1, 2, 5, 10 ms ... between tries); on PostgreSQL concurrently, each alone."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from egov_common.db import WriterTurn, make_engine
from egov_identity.storage import tables as t
from egov_identity.storage.hot_path import HotPath


def test_a_write_waits_for_another_processs_turn_before_taking_sqlites_lock(
    tmp_path: Path,
) -> None:
    database = tmp_path / "identity.db"
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    t.metadata.create_all(engine)
    hot = HotPath(engine)
    # Another worker's turn: its own open lock file, as a forked worker has.
    other_worker = WriterTurn(url)
    wrote = threading.Event()
    failed: list[BaseException] = []

    def record_a_jti() -> None:
        try:
            used = {"issuer": "app", "jti": "j1", "expires_at": 1e10}
            hot.commit(lambda db: db.run(hot.sql.insert_jti, used))
            wrote.set()
        except BaseException as exc:  # pragma: no cover - reported below
            failed.append(exc)

    writer = threading.Thread(target=record_a_jti)
    with other_worker:
        writer.start()
        assert not wrote.wait(1.0), "the write did not wait for the other worker's turn"
        # Waiting at the turn, it holds none of SQLite's locks: the other worker writes freely.
        probe = sqlite3.connect(database, timeout=0, isolation_level=None)
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        probe.close()
    writer.join(30)
    assert not failed and wrote.is_set()
    with engine.connect() as connection:
        count = sa.select(sa.func.count()).select_from(t.used_jtis)
        assert connection.execute(count).scalar() == 1
    other_worker.close()
    engine.dispose()



@contextlib.contextmanager
def _writers_held(url: str) -> Iterator[None]:
    """Hold every writer back, as another worker's commit would: on SQLite its writers' turn,
    so that the grants queue up and commit as one group; on PostgreSQL a lock on the table,
    which the grants, committing each alone, wait for together."""
    if url.startswith("sqlite"):
        other_worker = WriterTurn(url)
        try:
            with other_worker:
                yield
        finally:
            other_worker.close()
        return
    locker = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with locker.begin() as connection:
            connection.exec_driver_sql("LOCK TABLE used_jtis IN SHARE MODE")
            yield
    finally:
        locker.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_grants_committed_together_keep_their_writes_apart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'identity.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    t.metadata.create_all(engine)
    hot = HotPath(engine)

    def used(jti: str) -> dict[str, object]:
        return {"issuer": "app", "jti": jti, "expires_at": 1e10}

    hot.commit(lambda db: db.run(hot.sql.insert_jti, used("replayed")))
    jtis = ["a", "replayed", "b", "c", "d", "replayed"]
    outcomes: dict[int, object] = {}

    def present(index: int) -> None:
        try:
            outcomes[index] = hot.commit(lambda db: db.run(hot.sql.insert_jti, used(jtis[index])))
        except sa.exc.IntegrityError as exc:
            outcomes[index] = exc

    # While another writer commits, the grants wait, then commit (on SQLite in a group).
    with _writers_held(url):
        threads = [threading.Thread(target=present, args=(i,)) for i in range(len(jtis))]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
    for thread in threads:
        thread.join(30)

    assert [outcomes[i] for i in (0, 2, 3, 4)] == [1, 1, 1, 1]
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert isinstance(outcomes[5], sa.exc.IntegrityError)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(t.used_jtis.c.jti)).scalars().all()
    assert sorted(stored) == ["a", "b", "c", "d", "replayed"]
    if backend == "sqlite":  # ... as one transaction: the replays' errors stayed in savepoints
        assert "failed to commit" not in caplog.text
    engine.dispose()
