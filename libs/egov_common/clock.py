"""The one injectable source of time. Services take a :class:`Clock`; tests pass a fixed one.

:func:`request_time` reads a time a client sent (a protobuf Timestamp) as one."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol, runtime_checkable

from google.protobuf import timestamp_pb2

from egov_common.errors import FieldViolation, InvalidArgument

__all__ = ["Clock", "FixedClock", "SystemClock", "request_time"]


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time as timezone-aware UTC datetimes."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def request_time(stamp: timestamp_pb2.Timestamp, *, field: str, reason: str) -> dt.datetime:
    """A Timestamp from a request as an aware UTC datetime. One outside what a Timestamp may
    hold (0001-01-01 to 9999-12-31, nanos 0 to 999,999,999), which protobuf itself lets a
    client send, is InvalidArgument ``reason`` naming ``field``."""
    try:
        when: dt.datetime = stamp.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            reason,
            f"{field} is not a valid timestamp",
            field_violations=(
                FieldViolation(
                    field,
                    "seconds from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, "
                    "nanos from 0 to 999999999",
                ),
            ),
        ) from None
    return when


class FixedClock:
    """A clock that moves only when told to (tests). Thread-safe."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = start.astimezone(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        if not isinstance(delta, dt.timedelta):
            delta = dt.timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when.astimezone(dt.UTC)
