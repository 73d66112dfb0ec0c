"""The deadline of the call being served, so outgoing calls inherit what is left of it.

It is the deadline as gRPC delivers it: the caller's timeout crosses the wire as a
``grpc-timeout`` header that gRPC rounds up (to 100 ms for a 20 s timeout), so a server may see
a little more time than the caller asked for.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["deadline_scope", "remaining"]

#: The current call's deadline on ``time.monotonic()``'s clock (set by the server per call).
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "egov_deadline", default=None
)


def remaining() -> float | None:
    """Seconds left before the current call's deadline (may be <= 0), or ``None`` if it has none.

    ``egov_common.channels`` uses it as the timeout of outgoing calls.
    """
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()


@contextlib.contextmanager
def deadline_scope(seconds: float | None) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now (``None``: no deadline)."""
    token = deadline_var.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        deadline_var.reset(token)
