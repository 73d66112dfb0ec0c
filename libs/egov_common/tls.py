"""Mutual TLS between services, from an internal service CA.

Development: :func:`ensure_dev_ca` creates an ECDSA P-256 CA in a directory on first run (file
locked, so services starting together agree on one CA) and :func:`dev_material` issues a service
certificate (DNS SAN and CN = the service name, plus ``localhost``/``127.0.0.1``). Production
mounts the three PEM files named by the ``tls_*_file`` settings (cert-manager's layout: the
service name in the DNS SANs). A server in ``mtls`` mode requires a client certificate issued by
the same CA, and takes the caller's service name from it with :func:`peer_service`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from egov_common.files import write_durably

__all__ = [
    "TlsMaterial",
    "client_credentials",
    "dev_material",
    "ensure_dev_ca",
    "material_for",
    "peer_service",
    "server_credentials",
    "service_name",
]

_CA_CERT = "ca.pem"
_CA_KEY = "ca.key"
_CERT_DAYS = 365
_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes: the CA that peers must chain to, and this party's certificate and key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_pair(key_path: Path, key_pem: bytes, cert_path: Path, cert_pem: bytes) -> None:
    """The key, then its certificate, each whole and synced. A crash between the two leaves a
    certificate of another key, which :func:`_pair_matches` turns away on the next start."""
    write_durably(key_path, key_pem, mode=0o600, replace=True)
    write_durably(cert_path, cert_pem, mode=0o644, replace=True)


def _pair_matches(cert: x509.Certificate, key: Any) -> bool:
    return isinstance(key, ec.EllipticCurvePrivateKey) and cert.public_key() == key.public_key()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_dev_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the dev service CA from ``ca_dir``, creating it (ECDSA P-256, 10 years) if absent."""
    with _locked(ca_dir):
        cert_path, key_path = ca_dir / _CA_CERT, ca_dir / _CA_KEY
        if not cert_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egov dev service CA")])
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            _write_pair(key_path, _key_pem(key), cert_path,
                        cert.public_bytes(serialization.Encoding.PEM))
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not _pair_matches(cert, loaded):
            raise ValueError(f"{key_path} is not the EC private key of {cert_path}")
        return cert, loaded


def dev_material(ca_dir: Path, name: str, out_dir: Path) -> TlsMaterial:
    """A certificate for service ``name`` from the dev CA in ``ca_dir``, kept in ``out_dir``.

    Reused while valid for another week and issued by the current CA; otherwise re-issued.
    """
    ca_cert, ca_key = ensure_dev_ca(ca_dir)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    with _locked(out_dir):
        if cert_path.exists() and key_path.exists():
            try:
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            except ValueError:  # torn by a crash before writes were synced: issue anew
                pass
            else:
                fresh = cert.not_valid_after_utc - _RENEW_BEFORE > dt.datetime.now(dt.UTC)
                if fresh and cert.issuer == ca_cert.subject and _pair_matches(cert, key):
                    return TlsMaterial(ca_pem, cert_path.read_bytes(), key_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(name),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = _key_pem(key)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        _write_pair(key_path, key_pem, cert_path, cert_pem)
        return TlsMaterial(ca_pem, cert_pem, key_pem)


def material_for(settings: Any) -> TlsMaterial:
    """This service's TLS material: the mounted ``tls_*_file`` settings, else the dev CA.

    ``settings`` is a ``ServiceSettings``; dev certificates go under ``<data_dir>/tls``.
    """
    files = (settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
    if any(files):
        if not all(files):
            raise ValueError("tls_ca_file, tls_cert_file and tls_key_file go together")
        return TlsMaterial(*(Path(f).read_bytes() for f in files))
    return dev_material(settings.service_ca_dir, settings.service_name, settings.data_dir / "tls")


#: A service name as a DNS label (RFC 1123; a Kubernetes Service name).
_SERVICE_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: DNS names the dev CA and ``k8s/dev-secrets.sh`` add for loopback clients (probes).
_NO_SERVICE = frozenset({"localhost"})


def service_name(
    dns_names: Sequence[str], *, has_subject_alt_name: bool, common_names: Sequence[str] = ()
) -> str | None:
    """The one service a certificate of the service CA names, or ``None``.

    RFC 6125 (6.4.4): the identity is in the subjectAltName DNS names, as cert-manager writes
    them: ``signing``, ``signing.egov-trust.svc`` and ``signing.egov-trust.svc.cluster.local``
    all name ``signing`` (the first label); ``localhost`` names none. Every other name must
    name the same service: a certificate naming two (or a wildcard) has no service identity,
    rather than one chosen by the order of its names. The subject CN counts only when the
    certificate has no subjectAltName at all, and then only a single CN.
    """
    if has_subject_alt_name:
        names = [name.lower().rstrip(".") for name in dns_names]
    elif len(common_names) == 1:
        names = [common_names[0].lower().rstrip(".")]
    else:
        return None
    labels = {name.partition(".")[0] for name in names if name not in _NO_SERVICE}
    if len(labels) != 1:
        return None
    (label,) = labels
    return label if _SERVICE_LABEL.fullmatch(label) else None


def peer_service(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The service name of a gRPC call's mTLS peer (``context.auth_context()``), or ``None``
    (plaintext, or a certificate naming no single service: see :func:`service_name`)."""
    if auth_context.get("transport_security_type") != [b"ssl"]:
        return None
    if auth_context.get("x509_subject_alternative_name"):
        dns_names = [name.decode() for name in auth_context.get("peer_dns", ())]
        return service_name(dns_names, has_subject_alt_name=True)
    # No subjectAltName: the subject's CNs, every one (gRPC reports only the first).
    pem = auth_context.get("x509_pem_cert")
    if not pem:
        return None
    try:
        subject = x509.load_pem_x509_certificate(pem[0]).subject
    except ValueError:
        return None
    names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return service_name((), has_subject_alt_name=False, common_names=names)


def server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """Server side of mutual TLS: clients must present a certificate from the same CA."""
    return grpc.ssl_server_credentials(
        [(material.key_pem, material.cert_pem)],
        root_certificates=material.ca_pem,
        require_client_auth=True,
    )


def client_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Client side of mutual TLS: trust only the service CA, present our certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca_pem,
        private_key=material.key_pem,
        certificate_chain=material.cert_pem,
    )
