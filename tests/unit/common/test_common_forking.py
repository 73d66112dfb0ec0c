"""in_forked_children: a forked worker resets what it inherited, for objects still alive."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

from egov_common.forking import in_forked_children


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
