"""A real ``python -m egov_registry`` process per test, on SQLite or on PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest
from egov_clients.registry import RegistryClient
from egov_testing.processes import ServiceProcess, start_service
from egov_testing.pytest_plugin import fresh_postgres_database
from registry_testenv import (
    AUDITOR_TOKEN,
    ISSUER_TOKEN,
    OTHER_ISSUER_TOKEN,
    READER_TOKEN,
    StartRegistry,
    registry_env,
)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "shared" / "log-key.pem"


@pytest.fixture
def start_registry(database_url: str, key_file: Path, tmp_path: Path) -> StartRegistry:
    """Start (another) registry process on the test's database and log key."""

    def start(**extra: str) -> AbstractContextManager[ServiceProcess]:
        env = registry_env(database_url, key_file) | extra
        data_dir = tmp_path / f"registry-{secrets.token_hex(3)}"
        return start_service("egov_registry", env, data_dir=data_dir, http=False)

    return start


@pytest.fixture
def registry(start_registry: StartRegistry) -> Iterator[ServiceProcess]:
    with start_registry() as service:
        yield service


@pytest.fixture
def log_key(registry: ServiceProcess, key_file: Path) -> bytes:
    """The public key, pinned out of band (read from the file the registry wrote)."""
    return key_file.with_name("log-key.pub.pem").read_bytes()


@pytest.fixture
def clients(registry: ServiceProcess, log_key: bytes) -> Iterator[dict[str, RegistryClient]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                RegistryClient(registry.grpc_address, log_key=log_key, token=token)
            )
            for name, token in (
                ("issuer", ISSUER_TOKEN),
                ("other", OTHER_ISSUER_TOKEN),
                ("reader", READER_TOKEN),
                ("auditor", AUDITOR_TOKEN),
                ("anonymous", None),
            )
        }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_clients(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RegistryClient]]:
    """One registry process per module and backend, for tests that only add documents.

    Starting a process costs a second or more on a busy machine; tests using this fixture
    assert on what they added (tree size deltas, their own hashes), never on absolute sizes.
    """
    tmp = tmp_path_factory.mktemp("registry-shared")
    key_file = tmp / "shared" / "log-key.pem"
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'registry.db'}"
        else:
            url = stack.enter_context(fresh_postgres_database())
        service = stack.enter_context(
            start_service(
                "egov_registry", registry_env(url, key_file), data_dir=tmp / "data", http=False
            )
        )
        log_key = key_file.with_name("log-key.pub.pem").read_bytes()
        yield {
            name: stack.enter_context(
                RegistryClient(service.grpc_address, log_key=log_key, token=token)
            )
            for name, token in (
                ("issuer", ISSUER_TOKEN),
                ("other", OTHER_ISSUER_TOKEN),
                ("reader", READER_TOKEN),
                ("auditor", AUDITOR_TOKEN),
                ("anonymous", None),
            )
        }
