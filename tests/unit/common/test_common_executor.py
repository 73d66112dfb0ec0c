"""CallExecutor: a bound on running calls, not on threads; a waiting call lends its place."""

from __future__ import annotations

import threading
import time

import pytest
from egov_common.executor import CallExecutor, blocking


class _Gauge:
    """How many calls run at once (not counting those inside blocking())."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_no_more_calls_run_at_once_than_max_workers() -> None:
    executor = CallExecutor(max_workers=2, max_threads=8)
    gauge = _Gauge()

    def call(n: int) -> int:
        with gauge:
            time.sleep(0.005)
        return n * n

    results = [executor.submit(call, n) for n in range(40)]
    assert [f.result(timeout=30) for f in results] == [n * n for n in range(40)]
    assert gauge.most == 2
    executor.shutdown()


def test_a_waiting_call_lets_a_queued_call_run_in_its_place() -> None:
    executor = CallExecutor(max_workers=1, max_threads=4)
    release = threading.Event()

    def waits() -> str:
        with blocking():
            assert release.wait(30)
        return "waited"

    def releases() -> str:
        release.set()
        return "released"

    first = executor.submit(waits)
    second = executor.submit(releases)  # only runs if the first lends its place while waiting
    assert second.result(timeout=30) == "released"
    assert first.result(timeout=30) == "waited"
    executor.shutdown()


def test_threads_stop_at_max_threads_and_the_rest_waits_its_turn() -> None:
    executor = CallExecutor(max_workers=1, max_threads=2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def waits() -> None:
        started.release()
        with blocking():
            assert release.wait(30)

    calls = [executor.submit(waits) for _ in range(3)]
    assert started.acquire(timeout=30) and started.acquire(timeout=30)
    assert not started.acquire(timeout=0.3)  # the third has no thread while two wait
    release.set()
    for call in calls:
        call.result(timeout=30)
    executor.shutdown()


def test_errors_reach_the_future_and_the_thread_goes_on() -> None:
    executor = CallExecutor(max_workers=1, max_threads=1)

    def fails() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        executor.submit(fails).result(timeout=30)
    assert executor.submit(lambda: "next").result(timeout=30) == "next"
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)


def test_waiting_outside_the_executor_lends_none_of_its_places() -> None:
    executor = CallExecutor(max_workers=1, max_threads=4)
    release = threading.Event()
    second_started = threading.Event()
    first = executor.submit(release.wait, 30)  # holds the one place, without blocking()
    second = executor.submit(second_started.set)
    with blocking():  # this thread is not one of the executor's: nothing changes
        assert not second_started.wait(0.3)
    release.set()
    assert first.result(timeout=30)
    second.result(timeout=30)
    assert second_started.is_set()
    executor.shutdown()


def test_room_for_a_call_is_a_free_worker_or_a_place_in_the_queue() -> None:
    # the server refuses a call (SERVER_BUSY) when the executor has no room for it
    executor = CallExecutor(max_workers=1, max_threads=1)
    gate = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(10)

    try:
        assert executor.has_room(0)  # a free worker: the call runs at once, queueing nothing
        running = executor.submit(hold)
        assert started.wait(10)
        assert not executor.has_room(0)
        assert executor.has_room(1)
        queued = executor.submit(lambda: None)
        assert executor.queued_calls == 1
        assert not executor.has_room(1)
        assert executor.has_room(2)
    finally:
        gate.set()
    running.result(timeout=10)
    queued.result(timeout=10)
    executor.shutdown()
