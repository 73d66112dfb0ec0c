"""What a service generates for itself is on disk, whole, before it is used: strace watches real
processes write identity's development KEK and the development service CA and certificates
(``egov_common.files.write_durably``). A KEK lost to a power cut would leave every value sealed
under it unreadable; a torn certificate or key file would stop the service from starting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from egov_common import tls

_DEV_KEK = "import sys; from pathlib import Path; " \
    "from egov_identity.settings import IdentitySettings; " \
    "IdentitySettings(data_dir=Path(sys.argv[1])).kek_bytes()"
_DEV_TLS = "import sys; from pathlib import Path; from egov_common import tls; " \
    "tls.dev_material(Path(sys.argv[1]), 'registry', Path(sys.argv[2]))"


def test_identity_development_kek_is_synced_before_it_is_in_place(
    tmp_path: Path, durable_writes: Callable[..., list[str]]
) -> None:
    data = tmp_path / "identity"
    data.mkdir()
    assert durable_writes(_DEV_KEK, str(data), folder=data) == [
        "sync .kek", "move to kek", "sync folder",
    ]
    assert (data / "kek").stat().st_mode & 0o077 == 0
    assert durable_writes(_DEV_KEK, str(data), folder=data) == []  # kept, not made again


def test_development_ca_and_certificates_are_synced_key_first(
    tmp_path: Path, durable_writes: Callable[..., list[str]]
) -> None:
    ca, certs = tmp_path / "ca", tmp_path / "certs"
    ca.mkdir()
    certs.mkdir()
    steps = ["sync .{key}", "move to {key}", "sync folder",
             "sync .{cert}", "move to {cert}", "sync folder"]
    assert durable_writes(_DEV_TLS, str(ca), str(certs), folder=ca) == [
        s.format(key="ca.key", cert="ca.pem") for s in steps
    ]
    assert durable_writes(_DEV_TLS, str(ca), str(certs), folder=certs) == []  # still valid

    (certs / "registry.pem").unlink()
    assert durable_writes(_DEV_TLS, str(ca), str(certs), folder=certs) == [
        s.format(key="registry.key", cert="registry.pem") for s in steps
    ]


def test_a_certificate_left_from_another_key_is_issued_again(tmp_path: Path) -> None:
    """A crash between the key and its certificate leaves the old certificate beside the new
    key: the next start issues a matching pair instead of serving one TLS cannot load."""
    ca, certs = tmp_path / "ca", tmp_path / "certs"
    old = tls.dev_material(ca, "registry", certs)
    other = tls.dev_material(ca, "keys", tmp_path / "other")
    (certs / "registry.key").write_bytes(other.key_pem)  # the new key is in, its cert is not

    again = tls.dev_material(ca, "registry", certs)
    assert again.cert_pem != old.cert_pem
    cert = x509.load_pem_x509_certificate(again.cert_pem)
    key = serialization.load_pem_private_key(again.key_pem, password=None)
    assert cert.public_key() == key.public_key()
    assert (certs / "registry.pem").read_bytes() == again.cert_pem


def test_a_torn_certificate_or_key_is_issued_again(tmp_path: Path) -> None:
    ca, certs = tmp_path / "ca", tmp_path / "certs"
    first = tls.dev_material(ca, "registry", certs)
    (certs / "registry.key").write_bytes(b"")  # written by a version that did not sync
    second = tls.dev_material(ca, "registry", certs)
    assert second.key_pem != first.key_pem
    (certs / "registry.pem").write_bytes(second.cert_pem[:100])
    third = tls.dev_material(ca, "registry", certs)
    assert x509.load_pem_x509_certificate(third.cert_pem).public_key() == \
        serialization.load_pem_private_key(third.key_pem, password=None).public_key()
