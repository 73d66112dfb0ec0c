"""pytest fixtures shared by every test suite (registered in ``tests/conftest.py``).

- ``postgres_url``: a fresh PostgreSQL database per test (random name, dropped afterwards with
  ``FORCE``), created on the server named by ``EGOV_TEST_POSTGRES_URL``; skips when unset.
  ``fresh_postgres_database()`` makes one for a longer scope (a module's servers).
- ``drop_connections``: ends every other session on that database, as a restart or a failover
  would, and returns how many it ended.
- ``sqlite_url``: a SQLite file under ``tmp_path``.
- ``service_ca``: a dev service CA of this test (``egov_testing.devpki.DevServiceCA``).
- ``strace``: the path of ``strace``, for tests that watch a process's system calls (what makes a
  write durable); skips where strace is missing or may not trace.
- ``durable_writes``: runs Python code in a process under strace and returns, in order, the
  syncs and moves of files in one folder (``egov_common.files.write_durably``'s steps).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from egov_testing.devpki import DevServiceCA

POSTGRES_ENV = "EGOV_TEST_POSTGRES_URL"


@pytest.fixture
def service_ca(tmp_path: Path) -> DevServiceCA:
    """A fresh dev service CA under ``tmp_path`` (``.env("KEYS")`` puts a service on it)."""
    return DevServiceCA(tmp_path / "service-ca")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///<tmp_path>/test.db``."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database on the server named by ``EGOV_TEST_POSTGRES_URL``
    (a random name), dropped with ``FORCE`` when the block ends; skips the test when unset."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    server_url = sa.make_url(base)
    name = f"egov_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(
        server_url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    # Set but unreachable is a failure, not a skip: CI promises a server.
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database of this test only; dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def drop_connections(postgres_url: str) -> Callable[[], int]:
    """``drop()`` ends every session on the test's database but its own (pg_terminate_backend),
    as a server restart or a failover would; returns how many it ended."""

    def drop() -> int:
        engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                ended: int = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        return ended

    return drop


@pytest.fixture(scope="session")
def strace() -> str:
    """The path of ``strace``; skips when it is not installed or ptrace is refused here."""
    program = shutil.which("strace")
    if program is None:
        pytest.skip("strace is not installed (Debian package strace; .ci/install-system-packages)")
    probe = subprocess.run([program, "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace refused): {probe.stderr.strip()}")
    return program


@pytest.fixture
def durable_writes(strace: str, tmp_path: Path) -> Callable[..., list[str]]:
    """``run(code, *args, folder=...)``: run ``python -c code *args`` under strace and return
    the syncs and moves of files in ``folder``, in order: ``"sync <name>"`` for a file (a
    temporary file by the name it was made for: ``.<name>-XXXX`` reads ``.<name>``),
    ``"sync folder"``, ``"move to <name>"`` for a link or rename into place."""
    import re
    import sys

    def run(code: str, *args: str, folder: Path) -> list[str]:
        trace = tmp_path / f"trace-{secrets.token_hex(4)}"
        done = subprocess.run(
            [strace, "-f", "-y", "-o", str(trace), "-e",
             "trace=fsync,fdatasync,link,linkat,rename,renameat,renameat2",
             sys.executable, "-c", code, *args],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        events = []
        for line in trace.read_text().splitlines():
            sync = re.search(r"\bf(?:data)?sync\(\d+<([^>]*)>", line)
            if sync is not None:
                path = Path(sync.group(1))
                if path == folder:
                    events.append("sync folder")
                elif path.parent == folder:
                    name = path.name
                    if name.startswith("."):  # a temporary file: .<name>-<random>
                        name = name.rsplit("-", 1)[0]
                    events.append(f"sync {name}")
                continue
            # link("tmp", "dst") or linkat(AT_FDCWD, "tmp", AT_FDCWD, "dst", 0): the last path
            move = re.search(
                r"\b(link|linkat|rename|renameat2?)\(.*\"([^\"]+)\"[^\"]*\)\s+=\s+0", line
            )
            if move is not None and Path(move.group(2)).parent == folder:
                events.append(f"move to {Path(move.group(2)).name}")
        return events

    return run
