"""pyHanko's coroutines run from synchronous gRPC worker threads.

``asyncio.run`` builds an event loop, a selector, a self-pipe and (for pyHanko's fetchers,
which use ``asyncio.to_thread``) a default executor with its threads for every call, and tears
them down again: a noticeable share of a one-page signature. :func:`run` keeps one loop per
thread instead; whatever a call leaves scheduled is cancelled before it returns, as
``asyncio.run`` would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


class _ThreadLoop:
    """This thread's loop, closed when the thread ends (its holder is dropped then)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


_local = threading.local()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this thread's event loop (created on first use)."""
    holder: _ThreadLoop | None = getattr(_local, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _ThreadLoop()
        _local.holder = holder
    loop = holder.loop
    try:
        return loop.run_until_complete(coro)
    finally:
        leftovers = asyncio.all_tasks(loop)
        if leftovers:
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
