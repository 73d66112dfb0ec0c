"""Fixtures of the keys unit tests: a local identity and an in-process keys runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from egov_common.clock import FixedClock
from egov_keys.runtime import KeysRuntime
from keys_world import LocalIdentity, build_keys, fixed_clock


@pytest.fixture
def clock() -> FixedClock:
    return fixed_clock()


@pytest.fixture
def identity(clock: FixedClock) -> LocalIdentity:
    return LocalIdentity(now=lambda: clock.now().timestamp())


@pytest.fixture
def keys(sqlite_url: str, identity: LocalIdentity, clock: FixedClock) -> Iterator[KeysRuntime]:
    runtime = build_keys(sqlite_url, identity, clock)
    try:
        yield runtime
    finally:
        runtime.close()
