"""The gRPC server's worker threads, with a bound on the calls that run at once, not on threads.

A Python gRPC server hands every call to a thread of its executor. With many threads, calls that
are short and CPU-bound spend their time handing the GIL to each other; with few, a call that
waits (for its group commit, for another process's write) keeps a thread that could have run
another call, so fewer calls join the next group and the server idles. :class:`CallExecutor`
keeps at most ``max_workers`` calls *running*; a call that is about to wait says so with
:func:`blocking`, and while it waits its place goes to a queued call, on another thread (at
most ``max_threads`` in all). Idle threads are reused most recently idle first, and a thread
that finishes a call takes the next queued one without sleeping, so the threads that run are
few and hot (the Java ForkJoinPool's managed blocking, in a Python server).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

__all__ = ["CallExecutor", "blocking"]

_Item = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_local = threading.local()


@contextlib.contextmanager
def blocking() -> Iterator[None]:
    """Around a wait (not CPU work): this call's place may run another call meanwhile.

    Does nothing outside a :class:`CallExecutor` thread."""
    executor: CallExecutor | None = getattr(_local, "executor", None)
    if executor is None:
        yield
        return
    executor._leave()
    try:
        yield
    finally:
        executor._return()


class _Slot:
    """An idle thread, waiting for the item it is given."""

    __slots__ = ("item", "wake")

    def __init__(self) -> None:
        self.item: _Item | None = None
        self.wake = threading.Event()


class CallExecutor(futures.Executor):
    """At most ``max_workers`` calls running, on at most ``max_threads`` threads (see module)."""

    def __init__(
        self, max_workers: int, max_threads: int, thread_name_prefix: str = "grpc"
    ) -> None:
        if max_workers < 1 or max_threads < max_workers:
            raise ValueError("need 1 <= max_workers <= max_threads")
        self.max_workers = max_workers
        self.max_threads = max_threads
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._queue: collections.deque[_Item] = collections.deque()
        self._idle: list[_Slot] = []  # a stack: the most recently idle thread first
        self._running = 0  # calls running, not counting those in blocking()
        self._threads = 0
        self._started: list[threading.Thread] = []
        self._shutdown = False

    @property
    def queued_calls(self) -> int:
        """Calls submitted and waiting for a thread (not counting those that run or wait in
        ``blocking()``)."""
        return len(self._queue)

    def has_room(self, max_queued: int) -> bool:
        """Whether a call submitted now would run at once or wait behind fewer than
        ``max_queued`` others (read without the lock: a hint, exact for the submitter)."""
        queued = len(self._queue)
        if queued < max_queued:
            return True
        return (
            queued == 0
            and self._running < self.max_workers
            and (bool(self._idle) or self._threads < self.max_threads)
        )

    # -- the Executor interface --------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._queue.append((future, fn, args, kwargs))
            self._dispatch_locked()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
            idle, self._idle = self._idle, []
            started = list(self._started)
        for slot in idle:
            slot.wake.set()  # no item: the thread ends
        if wait:
            for thread in started:
                if thread is not threading.current_thread():
                    thread.join()

    # -- scheduling ----------------------------------------------------------------------------

    def _dispatch_locked(self) -> None:
        """Start queued calls while fewer than ``max_workers`` run and a thread can take one."""
        while self._queue and self._running < self.max_workers:
            if self._idle:
                slot = self._idle.pop()
                slot.item = self._queue.popleft()
                self._running += 1
                slot.wake.set()
            elif self._threads < self.max_threads:
                item = self._queue.popleft()
                self._running += 1
                self._threads += 1
                thread = threading.Thread(
                    target=self._work,
                    args=(item,),
                    name=f"{self._prefix}-{self._threads}",
                    daemon=True,
                )
                self._started.append(thread)
                thread.start()
            else:
                return  # every thread is taken: the call waits for one to finish

    def _leave(self) -> None:
        with self._lock:
            self._running -= 1
            self._dispatch_locked()

    def _return(self) -> None:
        with self._lock:
            self._running += 1  # may exceed max_workers until a call finishes

    def _work(self, item: _Item | None) -> None:
        _local.executor = self
        slot = _Slot()
        while item is not None:
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs
            with self._lock:
                if self._queue and self._running <= self.max_workers:
                    item = self._queue.popleft()  # stay running: no sleep, no wake-up
                    continue
                self._running -= 1
                if self._shutdown:  # queued calls still run (above), then the thread ends
                    self._threads -= 1
                    return
                slot.item = None
                slot.wake.clear()
                self._idle.append(slot)
            slot.wake.wait()
            item = slot.item
        with self._lock:
            self._threads -= 1
