"""A SQLite commit is on disk before it returns: strace watches a real process commit.

A committed transaction must survive a power cut or a kernel crash, not only the death of the
process (the SIGKILL tests cover that): with WAL journaling, only a sync of the WAL inside the
commit gives it. Power cannot be cut here, so the test checks the system calls that make it
true, in the order they happen.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

_WRITER = textwrap.dedent(
    """
    import sys
    import sqlalchemy as sa
    from egov_common.db import make_engine

    database, acknowledged = sys.argv[1], sys.argv[2]
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    for value in ("first", "second"):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t (v) VALUES (?)", (value,))
        # What a server does next: tell the client it is done.
        with open(acknowledged, "a") as out:
            out.write(value + "\\n")
    engine.dispose()
    """
)


def test_every_sqlite_commit_syncs_the_wal_before_it_returns(tmp_path: Path, strace: str) -> None:
    database = tmp_path / "store.db"
    acknowledged = tmp_path / "acknowledged"
    trace = tmp_path / "trace"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    traced = ["-f", "-y", "-e", "trace=fsync,fdatasync,write,pwrite64", "-o", str(trace)]
    done = subprocess.run(
        [strace, *traced, sys.executable, str(script), str(database), str(acknowledged)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert acknowledged.read_text() == "first\nsecond\n"

    # Between two acknowledgements (and before the first), the WAL got the row and was synced.
    events: list[str] = []
    for line in trace.read_text().splitlines():
        call = re.search(r"\b(write|pwrite64|fsync|fdatasync)\(\d+<([^>]*)>", line)
        if call is None:
            continue
        name, path = call.groups()
        if path == str(acknowledged):
            events.append("acknowledged")
        elif path == f"{database}-wal":
            events.append("wal " + ("synced" if "sync" in name else "written"))
    rounds = "|".join(events).split("acknowledged")[:-1]
    # Table, then the two rows: each acknowledgement follows the WAL's writes and then a sync
    # of the WAL, with nothing written to it in between.
    assert len(rounds) == 2, events
    for before in rounds:
        steps = [step for step in before.split("|") if step]
        assert "wal written" in steps, events
        assert steps[-1] == "wal synced", events
