"""Client-streamed requests that end only when the client ended them.

A servicer of a client-streaming RPC reads ``request_iterator``; gRPC ends that iteration both
when the client half-closes (it sent everything) and, now and then, when the client cancels or
runs out of time mid-stream: the cancellation can reach the iterator after the end of the
stream does (grpc/grpc#33038), and a ``for`` loop then takes half an upload for the whole.
:func:`client_stream` closes that gap: its iteration ends only on the client's half-close, and
otherwise raises ``Cancelled`` (reason ``CLIENT_CANCELLED``) or ``DeadlineExceeded``
(``DEADLINE_EXCEEDED``). The server (``egov_common.server``) hands every client-streaming
servicer its requests this way already, with the idle limit of :class:`StreamIdleWatch`
(``stream_idle_timeout``): a client that sends nothing for that long has its call ended
(``Cancelled``, reason ``CLIENT_STREAM_IDLE``) and its worker thread back. While a servicer
waits for a client's next message its place among the running calls goes to another call
(``egov_common.executor.blocking``), so slow clients hold threads, not the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import grpc

from egov_common.errors import Cancelled, DeadlineExceeded, EgovError, Internal
from egov_common.executor import blocking

__all__ = ["ClientStream", "StreamIdleWatch", "client_stream"]

T = TypeVar("T")

#: grpc reports ~292 years left for a call without a deadline.
_NO_DEADLINE = 10 * 365 * 24 * 3600.0


def client_stream(requests: Iterable[T], context: grpc.ServicerContext) -> Iterator[T]:
    """The messages of a client stream; the iteration ends only when the client ended it.

    Raises ``Cancelled`` (``CLIENT_CANCELLED``; ``CLIENT_STREAM_IDLE`` when the server ended an
    idle stream) or ``DeadlineExceeded`` (``DEADLINE_EXCEEDED``) instead of ending when the
    call ended any other way. Wrapping twice is harmless (the server wraps already).
    """
    if isinstance(requests, ClientStream):
        return requests
    return ClientStream(requests, context)


class ClientStream(Generic[T]):
    """See :func:`client_stream`; ``watch`` (the server's) ends the call when it idles."""

    __slots__ = ("_context", "_ended", "_requests", "_watch", "expired", "waiting_since")

    def __init__(
        self,
        requests: Iterable[T],
        context: grpc.ServicerContext,
        watch: StreamIdleWatch | None = None,
    ) -> None:
        self._requests = iter(requests)
        self._context = context
        self._watch = watch
        self._ended = False
        #: ``time.monotonic()`` since when the servicer waits for the next message, or None.
        self.waiting_since: float | None = None
        #: Set by the watch when it ended the call for idling.
        self.expired = False
        if watch is not None:
            watch.add(self)

    def __iter__(self) -> ClientStream[T]:
        return self

    def __next__(self) -> T:
        if self._ended:
            raise StopIteration
        self.waiting_since = time.monotonic()
        try:
            with blocking():  # waiting for the client: another call may run meanwhile
                message = next(self._requests)
        except StopIteration:
            self._confirm_end()
            raise
        except grpc.RpcError:  # grpc's own, bare: the call is over on the client's side
            self.close()
            raise self._ended_early() from None
        finally:
            self.waiting_since = None
        return message

    def close(self) -> None:
        """No more reading: the watch forgets this stream (the server calls it at the end)."""
        self._ended = True
        if self._watch is not None:
            self._watch.discard(self)

    def _confirm_end(self) -> None:
        """The iterator ended: the client's half-close, unless the call ended otherwise.

        A second read is the barrier: by the time it ends, the cancellation that was on its
        way behind the end of the stream has reached the call's state, where ``is_active``
        and the second read itself see it (gRPC answers a read after a half-close at once).
        """
        self.close()
        try:
            extra = next(self._requests)
        except StopIteration:
            pass
        except grpc.RpcError:
            raise self._ended_early() from None
        else:  # gRPC never delivers a message after the end of a stream
            del extra
            raise Internal("CLIENT_STREAM_INCONSISTENT", "a message after the end of the stream")
        if self.expired or not self._context.is_active():
            raise self._ended_early()

    def _ended_early(self) -> EgovError:
        if self.expired:
            timeout = self._watch.timeout if self._watch is not None else 0.0
            return Cancelled(
                "CLIENT_STREAM_IDLE", f"the client sent nothing for {timeout:g} s; call ended"
            )
        left = self._context.time_remaining()
        if left is not None and left <= 0:
            return DeadlineExceeded(
                "DEADLINE_EXCEEDED", "the deadline passed before the client finished its stream"
            )
        return Cancelled("CLIENT_CANCELLED", "the client cancelled the call mid-stream")

    def expire(self) -> None:
        """End the call for idling (the watch's thread): the blocked read wakes up."""
        self.expired = True
        self._context.cancel()


class StreamIdleWatch:
    """Ends the calls whose client stream a servicer has waited on for ``timeout`` seconds.

    One thread per server, started on demand and gone when no stream is open; it looks every
    ``timeout / 4`` (at most a second), so a stream is ended after ``timeout`` to
    ``1.25 * timeout`` without a message. The call is cancelled (the client sees CANCELLED:
    gRPC sends no status after a cancellation) and the reading servicer gets ``Cancelled``
    with reason ``CLIENT_STREAM_IDLE``.
    """

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._tick = max(0.005, min(timeout / 4, 1.0))
        self._lock = threading.Lock()
        self._streams: set[ClientStream[Any]] = set()
        self._thread: threading.Thread | None = None

    def add(self, stream: ClientStream[Any]) -> None:
        with self._lock:
            self._streams.add(stream)
            if self._thread is None or not self._thread.is_alive():  # not after a fork either
                self._thread = threading.Thread(
                    target=self._run, name="grpc-stream-idle", daemon=True
                )
                self._thread.start()

    def discard(self, stream: ClientStream[Any]) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _run(self) -> None:
        while True:
            time.sleep(self._tick)
            now = time.monotonic()
            with self._lock:
                if not self._streams:
                    self._thread = None
                    return
                idle = [
                    stream
                    for stream in self._streams
                    if (since := stream.waiting_since) is not None and now - since >= self.timeout
                ]
                self._streams.difference_update(idle)
            for stream in idle:
                stream.expire()
