"""egov_testing.processes: the CPU time of a service and of each of its worker processes, as
the benchmarks read it (Linux ``/proc``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from egov_testing.processes import tree_cpu_seconds, worker_cpu_seconds

# A parent forks two workers: the first spins on the CPU, the second sleeps; each prints its
# pid. The parent does nothing but wait for them.
_TWO_WORKERS = r"""
import os, sys, time
for role in ("spin", "sleep"):
    pid = os.fork()
    if pid == 0:
        os.write(1, f"{role} {os.getpid()}\n".encode())
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if role == "sleep":
                time.sleep(1)
        os._exit(0)
os.wait()
"""


@pytest.fixture
def two_workers() -> Iterator[tuple[int, dict[str, int]]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _TWO_WORKERS], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    roles = {}
    for _ in range(2):
        role, pid = parent.stdout.readline().split()
        roles[role] = int(pid)
    try:
        yield parent.pid, roles
    finally:
        for pid in (*roles.values(), parent.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_each_worker_is_charged_its_own_cpu_time(two_workers: tuple[int, dict[str, int]]) -> None:
    root, roles = two_workers
    before = worker_cpu_seconds(root)
    time.sleep(1.0)
    after = worker_cpu_seconds(root)
    assert set(after) == set(roles.values())  # the workers, not the parent
    spent = {role: after[pid] - before[pid] for role, pid in roles.items()}
    assert spent["spin"] > 0.3
    assert spent["sleep"] < 0.1
    # The whole tree is at least what its workers spent.
    assert tree_cpu_seconds(root) >= sum(after.values())


def test_a_process_without_workers_is_its_own_worker() -> None:
    lone = subprocess.Popen(["sleep", "30"])
    try:
        assert list(worker_cpu_seconds(lone.pid)) == [lone.pid]
    finally:
        lone.kill()
        lone.wait()
