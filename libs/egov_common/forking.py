"""What a forked worker must redo: ``egov_common.server`` forks its workers after the service's
objects are built (``EGOV_<SERVICE>_PROCESSES`` > 1), so pools, locks and open files inherited
from the parent must be dropped or reopened in each child before first use."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["held_during_forks", "in_forked_children"]

_T = TypeVar("_T")


def in_forked_children(owner: _T, reset: Callable[[_T], None]) -> None:
    """Run ``reset(owner)`` in every child process forked from now on, while ``owner`` lives.

    ``reset`` runs in the child right after ``fork``, before anything else uses ``owner``: it
    should drop the parent's database connections without closing them under the parent
    (``engine.dispose(close=False)``), make fresh locks (one held at fork time would never be
    released in the child) and forget open files whose locks the parent holds. Only a weak
    reference is kept, so the hook does not keep ``owner`` alive.
    """
    reference = weakref.ref(owner)

    def hook() -> None:
        alive = reference()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=hook)


def held_during_forks(owner: _T, lock: Callable[[_T], threading.Lock]) -> None:
    """Hold ``lock(owner)`` while every process forks from now on, while ``owner`` lives.

    For a background thread that calls into a C library with locks of its own (SQLite's): it
    holds the lock around those calls, so no child is forked while the library's locks are
    taken, which would leave them taken in the child for good. The parent releases the lock
    after the fork; the child must make a fresh one in its ``in_forked_children`` reset (the
    copy it got is held)."""
    reference = weakref.ref(owner)
    held: list[threading.Lock] = []

    def before() -> None:
        alive = reference()
        if alive is not None:
            taken = lock(alive)
            taken.acquire()
            held.append(taken)

    def after_in_parent() -> None:
        while held:
            held.pop().release()

    def after_in_child() -> None:
        held.clear()

    os.register_at_fork(
        before=before, after_in_parent=after_in_parent, after_in_child=after_in_child
    )
