"""Fixtures of the identity integration tests (helpers in identity_process.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from egov_clients.identity import MachineKey
from identity_process import RunningIdentity, base_env, running_identity


@pytest.fixture(scope="module")
def admin_key() -> MachineKey:
    return MachineKey()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory, admin_key: MachineKey
             ) -> Iterator[RunningIdentity]:
    tmp: Path = tmp_path_factory.mktemp("identity")
    with running_identity(base_env(tmp, admin_key, log_level="DEBUG"), data_dir=tmp) as running:
        yield running
