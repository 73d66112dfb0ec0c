"""Fixtures of the signing unit tests (helpers in signing_testkit)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from signing_testkit import SigningPki, SoftwareKeys, make_pki


@pytest.fixture(scope="session")
def pki() -> SigningPki:
    return make_pki()


@pytest.fixture
def keys(pki: SigningPki) -> SoftwareKeys:
    return SoftwareKeys(pki)
