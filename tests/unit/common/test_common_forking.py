"""in_forked_children: a forked worker resets what it inherited, for objects still alive;
held_during_forks: no fork while a background thread is inside a library's locks."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable

from egov_common.forking import held_during_forks, in_forked_children


class _Pool:
    def __init__(self) -> None:
        self.owner = os.getpid()

    def reset(self) -> None:
        self.owner = os.getpid()


def _in_child(report: Callable[[], bytes]) -> bytes:
    """What ``report()`` returns in a forked child."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(writable, report())
            code = 0
        finally:
            os._exit(code)
    os.close(writable)
    try:
        return os.read(readable, 64)
    finally:
        os.close(readable)
        os.waitpid(pid, 0)


def test_a_forked_child_resets_what_it_inherited_before_using_it() -> None:
    pool = _Pool()
    in_forked_children(pool, _Pool.reset)
    child_saw = _in_child(lambda: f"{pool.owner} {os.getpid()}".encode())
    owner, child = child_saw.split()
    assert owner == child  # reset ran in the child, before the child used the pool
    assert pool.owner == os.getpid()  # the parent's own is untouched


def test_an_object_gone_before_the_fork_is_not_kept_alive_nor_reset() -> None:
    resets: list[int] = []
    pool = _Pool()
    in_forked_children(pool, lambda _: resets.append(os.getpid()))
    del pool
    gc.collect()
    assert _in_child(lambda: str(len(resets)).encode()) == b"0"


class _Worker:
    """A background thread's state: ``inside`` while it holds ``lock`` (inside a library)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = False


def test_no_fork_happens_while_a_thread_holds_the_lock_and_the_parent_gets_it_back() -> None:
    worker = _Worker()
    held_during_forks(worker, lambda w: w.lock)
    entered = threading.Event()

    def work() -> None:
        with worker.lock:
            worker.inside = True
            entered.set()
            time.sleep(0.3)
            worker.inside = False

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(10)
    # The fork waits for the thread to leave: the child never inherits it half-way through.
    assert _in_child(lambda: str(worker.inside).encode()) == b"False"
    thread.join(10)
    assert worker.lock.acquire(timeout=1)  # released in the parent after the fork
    worker.lock.release()
