"""GroupCommit: concurrent jobs are committed once each, together, and nobody waits forever."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from egov_common.group_commit import GroupCommit


class _Job:
    def __init__(self, number: int) -> None:
        self.number = number
        self.committed_in: int | None = None
        self.error: Exception | None = None


class _Log:
    """A commit that takes a while, as a transaction does, and records its groups."""

    def __init__(self, fail_group: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.fail_group = fail_group

    def commit(self, jobs: list[_Job]) -> None:
        time.sleep(0.002)
        group = len(self.groups)
        self.groups.append([job.number for job in jobs])
        if group == self.fail_group:
            for job in jobs:
                job.error = RuntimeError("the group did not commit")
            raise RuntimeError("the group did not commit")
        for job in jobs:
            job.committed_in = group


def _submit_queued(
    group_commit: GroupCommit[_Job], turn: threading.RLock, jobs: list[_Job]
) -> None:
    """Submit ``jobs`` from threads while another writer holds ``turn``; let go once all are
    queued (so they go in one group), and wait for them."""
    with turn:
        threads = [threading.Thread(target=group_commit.submit, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(group_commit._queue) < len(jobs):
            assert time.monotonic() < deadline, "the jobs never queued"
            time.sleep(0.002)
    for thread in threads:
        thread.join(30)


def test_concurrent_jobs_commit_once_each_and_mostly_together() -> None:
    log = _Log()
    group_commit: GroupCommit[_Job] = GroupCommit(log.commit)
    jobs = [_Job(n) for n in range(400)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(group_commit.submit, jobs))
    committed = sorted(n for group in log.groups for n in group)
    assert committed == list(range(400))  # every job once, none lost, none twice
    assert all(job.committed_in is not None for job in jobs)
    assert len(log.groups) < 400 / 3  # 8 callers and a slow commit: groups, not one by one


def test_jobs_queued_while_the_turn_is_taken_go_in_one_group() -> None:
    log = _Log()
    turn = threading.RLock()
    group_commit: GroupCommit[_Job] = GroupCommit(log.commit, turn=lambda: turn)
    jobs = [_Job(n) for n in range(6)]
    _submit_queued(group_commit, turn, jobs)
    assert sorted(log.groups[0]) == list(range(6))
    assert len(log.groups) == 1


def test_a_failed_group_fails_its_leader_and_wakes_the_others() -> None:
    log = _Log(fail_group=0)
    group_commit: GroupCommit[_Job] = GroupCommit(log.commit)
    jobs = [_Job(n) for n in range(50)]
    raised: list[Exception] = []

    def submit(job: _Job) -> None:
        try:
            group_commit.submit(job)
        except RuntimeError as exc:
            raised.append(exc)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, jobs))  # returns: nobody waits forever
    failed = [job for job in jobs if job.error is not None]
    assert sorted(job.number for job in failed) == sorted(log.groups[0])
    assert len(raised) == 1  # the leader of the failed group
    assert all(job.committed_in is not None for job in jobs if job.error is None)


def test_a_turn_that_cannot_be_taken_leaves_nothing_queued() -> None:
    log = _Log()

    def broken_turn() -> threading.RLock:
        raise OSError("lock file unavailable")

    group_commit: GroupCommit[_Job] = GroupCommit(log.commit, turn=broken_turn)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        group_commit.submit(_Job(1))
    assert group_commit._queue == []
    assert log.groups == []


class _Poisoned(_Log):
    """A transaction that fails whenever it holds job 3, keeping nothing of the others."""

    def commit(self, jobs: list[_Job]) -> None:
        time.sleep(0.002)
        self.groups.append([job.number for job in jobs])
        if any(job.number == 3 for job in jobs):
            raise ValueError("job 3 breaks its transaction")
        for job in jobs:
            job.committed_in = len(self.groups) - 1


def _record_failure(job: _Job, error: Exception) -> None:
    job.error = error


def test_with_failed_a_broken_group_is_committed_again_each_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = _Poisoned()
    turn = threading.RLock()
    group_commit: GroupCommit[_Job] = GroupCommit(
        log.commit, turn=lambda: turn, failed=_record_failure
    )
    jobs = [_Job(n) for n in range(6)]
    _submit_queued(group_commit, turn, jobs)
    assert sorted(log.groups[0]) == list(range(6))
    assert sorted(map(tuple, log.groups[1:])) == [(n,) for n in range(6)]  # then each alone
    assert [job.number for job in jobs if job.error is not None] == [3]
    assert isinstance(jobs[3].error, ValueError)
    assert all(job.committed_in is not None for job in jobs if job.number != 3)
    assert "committing each alone" in caplog.text


def test_with_failed_a_job_alone_is_not_tried_again() -> None:
    log = _Poisoned()
    group_commit: GroupCommit[_Job] = GroupCommit(log.commit, failed=_record_failure)
    job = _Job(3)
    group_commit.submit(job)  # does not raise: the error is the job's
    assert log.groups == [[3]]
    assert isinstance(job.error, ValueError)
