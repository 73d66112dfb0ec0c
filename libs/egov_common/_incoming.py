"""The gRPC call being served, so that the calls made while serving it end with it.

The server (``_interceptors.CallInterceptor``) makes an :class:`IncomingCall` current for each
call; ``egov_common.channels`` hands it every outgoing call started in that context. When the
incoming call ends while its servicer is still at work (the client cancelled, or its deadline
passed), the outgoing calls still in flight are cancelled, as Go and Java do with a call's
context: the peers stop working for a client that is gone. Once the servicer is done, its
outgoing calls are left alone (nothing the servicer started is cut short by a normal end).
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import grpc

__all__ = ["IncomingCall", "incoming_var"]


class IncomingCall:
    """One call being served and the outgoing calls in flight on its behalf."""

    __slots__ = ("_context", "_ended", "_listening", "_lock", "_outgoing", "_served")

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._outgoing: set[Any] = set()
        self._listening = False  # our callback is registered with the incoming call
        self._ended = False  # the incoming call ended before its servicer did
        self._served = False  # the servicer is done

    def track(self, call: Any) -> None:
        """Cancel ``call`` (a client-side ``grpc.Call``) if this incoming call ends first."""
        with self._lock:
            if self._served:
                return
            listen = not self._listening
            self._listening = True
        if listen and not self._context.add_callback(self._on_end):
            self._on_end()  # it had ended already
        if not self._context.is_active():
            call.cancel()
            return
        with self._lock:
            if self._ended:
                cancel = True
            else:
                cancel = False
                self._outgoing.add(call)
        if cancel:
            call.cancel()
        elif not call.add_callback(lambda: self._forget(call)):
            self._forget(call)  # done already

    def served(self) -> None:
        """The servicer returned (or raised): nothing of it is to be cancelled any more."""
        with self._lock:
            self._served = True
            self._outgoing.clear()

    def _forget(self, call: Any) -> None:
        with self._lock:
            self._outgoing.discard(call)

    def _on_end(self) -> None:
        """The incoming call is over (grpc's thread); cancel what its servicer still waits for."""
        with self._lock:
            if self._served:
                return
            self._ended = True
            outgoing, self._outgoing = self._outgoing, set()
        for call in outgoing:
            call.cancel()


#: The call being served in this context (set by the server per call), or None.
incoming_var: contextvars.ContextVar[IncomingCall | None] = contextvars.ContextVar(
    "egov_incoming_call", default=None
)
