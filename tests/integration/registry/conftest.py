"""A real ``python -m egov_registry`` process per test, on SQLite or on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest
from egov_clients.registry import RegistryClient
from egov_pki.identifiers import check_digit
from egov_testing.processes import ServiceProcess, start_service


def agency_number(seed: int) -> str:
    first = f"0994{seed:08d}"
    return first + str(check_digit(first))


AGENCY = f"TH-JUR:{agency_number(1)}"
OTHER_AGENCY = f"TH-JUR:{agency_number(2)}"
ISSUER_TOKEN = "issuer-token-agency-1"
OTHER_ISSUER_TOKEN = "issuer-token-agency-2"
READER_TOKEN = "reader-token"
STATIC_TOKENS = {
    ISSUER_TOKEN: {
        "subject": "agency-1-backoffice",
        "scopes": ["registry:issue"],
        "agency": AGENCY,
    },
    OTHER_ISSUER_TOKEN: {
        "subject": "agency-2-backoffice",
        "scopes": ["registry:issue"],
        "agency": OTHER_AGENCY,
    },
    READER_TOKEN: {"subject": "relying-party", "scopes": ["registry:read"]},
}


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def registry_env(database_url: str, key_file: Path) -> dict[str, str]:
    return {
        "EGOV_REGISTRY_DATABASE_URL": database_url,
        "EGOV_REGISTRY_LOG_KEY_FILE": str(key_file),
        "EGOV_REGISTRY_STATIC_TOKENS": json.dumps(STATIC_TOKENS),
        "EGOV_REGISTRY_LOG_LEVEL": "WARNING",
    }


StartRegistry = Callable[..., AbstractContextManager[ServiceProcess]]


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
                ("anonymous", None),
            )
        }
