"""The whole platform once per module: identity, keys, registry, signing and the verify portal as
separate processes (``egov_testing.platform``), and the stories' outcomes as module fixtures so
each test asserts one behaviour without re-running the flows (``egov_testing.demo``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from egov_testing import demo
from egov_testing.platform import Platform, start_platform


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-work")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with start_platform(tmp_path_factory.mktemp("platform")) as running:
        yield running


@pytest.fixture(scope="module")
def citizen_signed(platform: Platform, work_dir: Path) -> demo.CitizenSigned:
    return demo.citizen_signs(platform, work_dir)


@pytest.fixture(scope="module")
def issued(platform: Platform) -> demo.IssuedCertificate:
    return demo.agency_issues_certificate(platform)
