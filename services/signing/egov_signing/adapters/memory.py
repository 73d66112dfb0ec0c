"""glibc's allocator, tuned so that the memory of a large PDF goes back to the OS after the
request instead of staying in the process (peak RSS would otherwise creep up with every large
document). Outside glibc both are no-ops."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Any

__all__ = ["keep_large_buffers_out_of_the_heap", "release_free_memory"]

_M_MMAP_THRESHOLD = -3


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def keep_large_buffers_out_of_the_heap() -> None:
    """Fix the mmap threshold at 128 KiB: glibc would otherwise raise it after a large free, and
    buffers of megabytes would land on the heap and stay in the RSS after the request."""
    with contextlib.suppress(AttributeError):  # not glibc (or no libc): nothing to tune
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def release_free_memory() -> None:
    """Give the free pages of every malloc arena back to the OS (after a large document: gRPC's
    and pyHanko's many small buffers are spread over the worker threads' arenas)."""
    with contextlib.suppress(AttributeError):
        _LIBC.malloc_trim(0)
