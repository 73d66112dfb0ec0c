"""client_stream: a client stream ends only when its client ended it (grpc/grpc#33038)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from egov_common.errors import Cancelled, DeadlineExceeded
from egov_common.streams import ClientStream, StreamIdleWatch, client_stream


class _Context:
    """The parts of a server call's context a client stream reads."""

    def __init__(self, *, active: bool = True, remaining: float = 30.0) -> None:
        self.active = active
        self.remaining = remaining
        self.cancelled = threading.Event()

    def is_active(self) -> bool:
        return self.active

    def time_remaining(self) -> float:
        return self.remaining

    def cancel(self) -> None:
        self.active = False
        self.cancelled.set()


class _Requests:
    """grpc's request iterator as a servicer sees it: ``messages``, then the end of the stream;
    ``on_read_after_end`` runs when it is read again after that."""

    def __init__(self, messages: list[bytes], on_read_after_end: object = None) -> None:
        self.messages = list(messages)
        self.ended = False
        self.on_read_after_end = on_read_after_end

    def __iter__(self) -> _Requests:
        return self

    def __next__(self) -> bytes:
        if self.messages:
            return self.messages.pop(0)
        if self.ended and callable(self.on_read_after_end):
            self.on_read_after_end()
        self.ended = True
        raise StopIteration


def test_a_stream_the_client_finished_yields_every_message() -> None:
    assert list(client_stream(_Requests([b"a", b"b"]), _Context())) == [b"a", b"b"]


def test_a_stream_whose_call_was_cancelled_raises_instead_of_ending() -> None:
    context = _Context(active=False)
    with pytest.raises(Cancelled) as exc:
        list(client_stream(_Requests([b"a"]), context))
    assert exc.value.reason == "CLIENT_CANCELLED"


def test_a_cancellation_that_arrives_after_the_end_of_the_stream_is_still_seen() -> None:
    # the race of grpc/grpc#33038: the end of the stream reaches the servicer first, and the
    # cancellation only once grpc has handled its next event (here: the barrier read)
    context = _Context()

    def cancellation_lands() -> None:
        context.active = False

    with pytest.raises(Cancelled):
        list(client_stream(_Requests([b"a"], on_read_after_end=cancellation_lands), context))


def test_a_stream_cut_by_its_deadline_raises_deadline_exceeded() -> None:
    with pytest.raises(DeadlineExceeded) as exc:
        list(client_stream(_Requests([b"a"]), _Context(active=False, remaining=0.0)))
    assert exc.value.reason == "DEADLINE_EXCEEDED"


def test_grpcs_own_error_for_a_cancelled_stream_becomes_cancelled() -> None:
    def cancelled() -> Iterator[bytes]:
        yield b"a"
        raise grpc.RpcError()

    with pytest.raises(Cancelled):
        list(client_stream(cancelled(), _Context(active=False)))


def test_wrapping_twice_reads_through_one_wrapper() -> None:
    context = _Context()
    once = client_stream(_Requests([b"a"]), context)
    assert client_stream(once, context) is once


def test_a_stream_idle_longer_than_the_watch_allows_is_ended() -> None:
    context = _Context()
    release = threading.Event()

    def stalled() -> Iterator[bytes]:
        yield b"a"
        context.cancelled.wait(10)  # grpc wakes the reader when the call is cancelled
        release.set()
        raise grpc.RpcError()

    watch = StreamIdleWatch(0.05)
    stream = ClientStream(stalled(), context, watch)
    assert next(stream) == b"a"
    with pytest.raises(Cancelled) as exc:
        next(stream)
    assert exc.value.reason == "CLIENT_STREAM_IDLE"
    assert release.is_set()
