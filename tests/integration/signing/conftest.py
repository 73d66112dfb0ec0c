"""Fixtures of the signing integration tests: real keys and signing processes.

identity is stood in for by keys' test helper (a local issuer with a JWKS over HTTP); keys runs
as ``python -m egov_keys`` with software custody, signing as ``python -m egov_signing``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "keys"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "signing"))

from egov_testing.processes import ServiceProcess, start_service
from keys_world import AUDIENCE, ISSUER, LocalIdentity, new_kek
from signing_testkit import signing_env


@pytest.fixture(scope="module")
def identity() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def jwks_url(identity: LocalIdentity) -> Iterator[str]:
    with identity.serve_jwks() as url:
        yield url


@pytest.fixture(scope="module")
def keys_process(jwks_url: str) -> Iterator[ServiceProcess]:
    env = {
        "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
        "EGOV_KEYS_IDENTITY_ISSUER": ISSUER,
        "EGOV_KEYS_IDENTITY_JWKS_URL": jwks_url,
        "EGOV_KEYS_TOKEN_AUDIENCES": f"{AUDIENCE},urn:egov:keys",
        "EGOV_KEYS_SIGN_CALLERS": "client:signing",  # no mTLS in these tests
    }
    with start_service("egov_keys", env=env) as service:
        yield service


@pytest.fixture(scope="module")
def signing_process(
    keys_process: ServiceProcess, identity: LocalIdentity
) -> Iterator[ServiceProcess]:
    env = signing_env(keys_process.grpc_address, identity)
    with start_service("egov_signing", env=env, http=False) as service:
        yield service
