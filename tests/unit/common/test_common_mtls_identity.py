"""Which service an mTLS caller is: the DNS names of its certificate (RFC 6125), as cert-manager
writes them; the subject CN only for a certificate without subjectAltName."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from egov_common import tls
from egov_common.auth import current_caller
from egov_common.server import BuiltServer, GrpcService, build_server
from egov_common.settings import ServiceSettings
from google.protobuf import empty_pb2, wrappers_pb2

SERVICE = "egov.test.v1.Who"


def _who(request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
    caller = current_caller()
    return wrappers_pb2.StringValue(value=f"{caller.kind.value}:{caller.peer_service or ''}")


def _register(server: grpc.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        _who,
        request_deserializer=empty_pb2.Empty.FromString,
        response_serializer=wrappers_pb2.StringValue.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Who": handler}),)
    )


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-ca")


@pytest.fixture(scope="module")
def server(ca_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltServer]:
    settings = ServiceSettings(
        service_name="registry",
        grpc_listen="127.0.0.1:0",
        tls_mode="mtls",
        tls_ca_dir=ca_dir,
        data_dir=tmp_path_factory.mktemp("registry"),
    )
    built = build_server(settings, [GrpcService(SERVICE, _register)])
    built.start()
    yield built
    built.drain(grace=1)


def _issue(
    ca_dir: Path, common_names: list[str], dns_names: list[str] | None, ip: bool = False
) -> tls.TlsMaterial:
    """A client certificate of the service CA: these CNs, and these DNS names as its SAN
    (``None``: no subjectAltName at all)."""
    ca_cert, ca_key = tls.ensure_dev_ca(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in common_names]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
    )
    if dns_names is not None:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        if ip:
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return tls.TlsMaterial(
        ca_cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _caller(server: BuiltServer, material: tls.TlsMaterial) -> str:
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(
        f"localhost:{server.port}", tls.client_credentials(material), options
    ) as channel:
        reply = channel.unary_unary(
            f"/{SERVICE}/Who",
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=wrappers_pb2.StringValue.FromString,
        )(empty_pb2.Empty(), timeout=10)
    return str(reply.value)


@pytest.mark.parametrize(
    ("common_names", "dns_names", "caller"),
    [
        # cert-manager (k8s/README.md): the Service name and its cluster names, no CN
        (
            [],
            ["signing", "signing.egov-trust.svc", "signing.egov-trust.svc.cluster.local"],
            "service:signing",
        ),
        # the SAN speaks, not the CN (RFC 6125 6.4.4)
        (["registry"], ["signing"], "service:signing"),
        # k8s/dev-secrets.sh and the dev CA add localhost for the probes: it names no service
        (["keys"], ["keys", "keys.egov-trust.svc", "localhost"], "service:keys"),
        (["keys"], ["localhost"], "anonymous:"),
        # names of two services: which one would be guesswork, so none
        ([], ["signing", "keys"], "anonymous:"),
        ([], ["*.egov-trust.svc"], "anonymous:"),
        # no subjectAltName at all: the one CN, the way older certificates carried the name
        (["signing"], None, "service:signing"),
        (["signing", "keys"], None, "anonymous:"),
    ],
    ids=[
        "cert-manager",
        "san-over-cn",
        "localhost-beside",
        "localhost-only",
        "two-services",
        "wildcard",
        "cn-without-san",
        "two-cns-without-san",
    ],
)
def test_the_caller_is_the_one_service_its_certificate_names(
    server: BuiltServer,
    ca_dir: Path,
    common_names: list[str],
    dns_names: list[str] | None,
    caller: str,
) -> None:
    assert _caller(server, _issue(ca_dir, common_names, dns_names)) == caller


def test_a_certificate_with_a_san_but_no_dns_name_has_no_service_identity(
    server: BuiltServer, ca_dir: Path
) -> None:
    assert _caller(server, _issue(ca_dir, ["signing"], [], ip=True)) == "anonymous:"


def test_the_dev_ca_issues_certificates_whose_san_names_the_service(
    server: BuiltServer, ca_dir: Path, tmp_path: Path
) -> None:
    material = tls.dev_material(ca_dir, "signing", tmp_path)
    cert = x509.load_pem_x509_certificate(material.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "signing" in san.get_values_for_type(x509.DNSName)
    assert _caller(server, material) == "service:signing"
