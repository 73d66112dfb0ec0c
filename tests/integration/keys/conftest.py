"""Fixtures of the keys integration tests: a real ``python -m egov_keys`` process with a local
identity JWKS served over HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The token helpers live beside the unit tests (one copy of identity's claim layout).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "keys"))

from egov_testing.processes import ServiceProcess, start_service
from keys_grpc import keys_env
from keys_world import LocalIdentity


@pytest.fixture(scope="module")
def identity() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def jwks_url(identity: LocalIdentity) -> Iterator[str]:
    with identity.serve_jwks() as url:
        yield url


@pytest.fixture(scope="module")
def keys_process(jwks_url: str) -> Iterator[ServiceProcess]:
    with start_service("egov_keys", env=keys_env(jwks_url)) as service:
        yield service
