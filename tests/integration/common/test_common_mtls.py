"""Mutual TLS from the internal service CA, on the echo test service run as a real process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from egov_common import tls
from egov_common.channels import open_channel
from egov_common.settings import ServiceSettings
from egov_testing.processes import ServiceProcess, start_service
from google.protobuf import empty_pb2, wrappers_pb2

HERE = Path(__file__).parent
WHO_AM_I = "/egov.test.v1.EchoService/WhoAmI"


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-ca")


@pytest.fixture(scope="module")
def echo(ca_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        "PYTHONPATH": path,
        "EGOV_ECHO_REALM": "test",
        "EGOV_ECHO_TLS_MODE": "mtls",
        "EGOV_ECHO_TLS_CA_DIR": str(ca_dir),
    }
    data_dir = tmp_path_factory.mktemp("echo-mtls")
    with start_service("echo_service", env, name="ECHO", data_dir=data_dir, http=False) as svc:
        yield svc


def who_am_i(channel: grpc.Channel) -> str:
    call = channel.unary_unary(
        WHO_AM_I,
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=wrappers_pb2.StringValue.FromString,
    )
    return str(call(empty_pb2.Empty(), timeout=5).value)


def test_service_with_a_ca_issued_certificate_is_identified_by_its_name(
    echo: ServiceProcess, ca_dir: Path, tmp_path: Path
) -> None:
    material = tls.dev_material(ca_dir, "signing", tmp_path)
    settings = ServiceSettings(service_name="signing", tls_mode="mtls")
    with open_channel(echo.grpc_address, settings, tls_material=material) as channel:
        assert who_am_i(channel) == "service:signing"


def test_client_without_a_certificate_is_refused(echo: ServiceProcess, ca_dir: Path) -> None:
    ca_pem = (ca_dir / "ca.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with (
        grpc.secure_channel(echo.grpc_address, credentials) as channel,
        pytest.raises(grpc.RpcError) as exc,
    ):
        who_am_i(channel)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE


def test_client_with_a_certificate_from_another_ca_is_refused(
    echo: ServiceProcess, ca_dir: Path, tmp_path: Path
) -> None:
    foreign = tls.dev_material(tmp_path / "other-ca", "signing", tmp_path / "certs")
    trusting_ours = tls.TlsMaterial(
        (ca_dir / "ca.pem").read_bytes(), foreign.cert_pem, foreign.key_pem
    )
    with (
        grpc.secure_channel(echo.grpc_address, tls.client_credentials(trusting_ours)) as channel,
        pytest.raises(grpc.RpcError) as exc,
    ):
        who_am_i(channel)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(echo: ServiceProcess) -> None:
    with (
        grpc.insecure_channel(echo.grpc_address) as channel,
        pytest.raises(grpc.RpcError) as exc,
    ):
        who_am_i(channel)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE


def test_dev_ca_is_created_once_and_reused(tmp_path: Path) -> None:
    first = tls.dev_material(tmp_path / "ca", "keys", tmp_path / "keys")
    second = tls.dev_material(tmp_path / "ca", "registry", tmp_path / "registry")
    assert first.ca_pem == second.ca_pem
    assert tls.dev_material(tmp_path / "ca", "keys", tmp_path / "keys") == first
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
