"""The token endpoint's writes on SQLite take the writers' turn that other worker processes
take, so a worker that finds another one committing waits for the turn, not in SQLite's busy
handler (which sleeps 1, 2, 5, 10 ms ... between tries)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
            with hot.write() as db:
                db.run(hot.sql.insert_jti, {"issuer": "app", "jti": "j1", "expires_at": 1e10})
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

