"""Group commit: the writes that callers hand in while another commit runs go in together.

A hot write path (a SignHash's spent SAD and audit entry, a registration and its log leaf) pays
for a transaction per commit; under concurrency :class:`GroupCommit` makes that one per group:

- a caller queues its job; if nobody is committing it leads: it takes the writer's turn, takes
  every queued job (its own and those that came while it waited for the turn) and commits them;
- the others sleep until their group is committed, or until it is their turn to lead (the
  leader hands over to the oldest job queued meanwhile): one wake-up each.

Waiting on the writer lock instead, each waiter had to take the lock in turn only to find its
job done, and the next group's leader started only after that queue of wake-ups; at the
registry's store with 8 callers most groups were of one.

A group is one transaction, so one job that breaks it (a constraint another process's write
now violates, a value the driver refuses) would fail every job of the group. Given ``failed``,
a group whose commit raises is committed again one job at a time, in the same turn: whatever
failed fails alone, and the others are committed as if they had come alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from egov_common.executor import blocking

__all__ = ["GroupCommit"]

_J = TypeVar("_J")

log = logging.getLogger("egov.group_commit")


class _Entry(Generic[_J]):
    __slots__ = ("done", "job", "wake")

    def __init__(self, job: _J) -> None:
        self.job = job
        self.done = False
        self.wake = threading.Event()


class GroupCommit(Generic[_J]):
    """Commit jobs in groups with ``commit(jobs)``, in the order they were handed in.

    ``commit`` records each job's outcome in the job (its result or its error) and returns; if
    it raises, the exception propagates in the leader's thread only, after the other callers of
    that group were woken (``commit`` should have marked their jobs failed first). ``turn`` is
    held around taking the queue and committing (``egov_common.db.WriterTurn``), so jobs that
    queue while another writer has the turn join the next group.

    With ``failed``, ``commit`` raising an ``Exception`` means its whole transaction failed
    (nothing of it kept): each job is then committed alone, and ``failed(job, error)`` records
    the error of a job whose own commit raises (see module). A group of one is not tried again.
    """

    def __init__(
        self,
        commit: Callable[[list[_J]], None],
        *,
        turn: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        failed: Callable[[_J, Exception], None] | None = None,
    ) -> None:
        self._commit = commit if failed is None else self._each_alone_on_failure(commit, failed)
        self._turn = turn
        self._lock = threading.Lock()
        self._queue: list[_Entry[_J]] = []
        self._leading = False

    def submit(self, job: _J) -> None:
        """Return once ``job`` was committed in a group (or its group's commit raised)."""
        entry = _Entry(job)
        with self._lock:
            self._queue.append(entry)
            lead = not self._leading
            self._leading = True
        if not lead:
            with blocking():  # another call may run meanwhile and join the next group
                entry.wake.wait()
            if entry.done:
                return
        group: list[_Entry[_J]] = []
        successor: _Entry[_J] | None = None
        try:
            with self._turn():
                with self._lock:
                    group, self._queue = self._queue, []
                self._commit([queued.job for queued in group])
        finally:
            for queued in group:
                queued.done = True
                if queued is not entry:
                    queued.wake.set()
            with self._lock:
                if not group and entry in self._queue:  # the turn failed: never committed
                    self._queue.remove(entry)
                if self._queue:
                    successor = self._queue[0]
                else:
                    self._leading = False
            if successor is not None:
                successor.wake.set()

    @staticmethod
    def _each_alone_on_failure(
        commit: Callable[[list[_J]], None], failed: Callable[[_J, Exception], None]
    ) -> Callable[[list[_J]], None]:
        def commit_or_each_alone(jobs: list[_J]) -> None:
            try:
                commit(jobs)
            except Exception as exc:
                if len(jobs) == 1:
                    failed(jobs[0], exc)
                    return
                log.warning(
                    "a group failed to commit; committing each alone",
                    extra={"jobs": len(jobs), "error": type(exc).__name__},
                )
                for job in jobs:
                    try:
                        commit([job])
                    except Exception as alone:
                        failed(job, alone)

        return commit_or_each_alone

    def after_fork(self) -> None:
        """In a forked child: no queue, nobody leading, a fresh lock."""
        self._lock = threading.Lock()
        self._queue = []
        self._leading = False
