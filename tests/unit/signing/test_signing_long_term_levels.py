"""PAdES B-LT is claimed only when the document itself carries the revocation data of the whole
path (EN 319 142-1 5.4): the signer's, and that of every CA certificate below the trust anchor
that names a revocation service. Data the verifier fetched on line, or that of another
certificate, does not make a document long-term."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov_signing.domain.report import Indication, PadesLevel, SignatureReport
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore
from signing_testkit import NOW, SigningPki, _cert, _name, make_pdf


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> asn1_crl.CertificateList:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))


class _ThreeTierPki:
    """Root CA -> issuing CA -> signer; both CA-issued certificates name a CRL."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("Three-tier Root CA", "egov-trust tests")
        self.root = _cert(root_name, self.root_key, root_name, self.root_key, ca=True)
        self.issuing_key = ec.generate_private_key(ec.SECP256R1())
        issuing_name = _name("Three-tier Issuing CA", "egov-trust tests")
        self.issuing = _cert(
            issuing_name, self.issuing_key, root_name, self.root_key, ca=True, crl=True
        )
        self.signer_key = ec.generate_private_key(ec.SECP256R1())
        self.signer = _cert(
            _name("Three-tier signer", "ACME"),
            self.signer_key,
            issuing_name,
            self.issuing_key,
            ca=False,
            crl=True,
        )
        self.root_crl = _crl(self.root, self.root_key)  # covers the issuing CA
        self.issuing_crl = _crl(self.issuing, self.issuing_key)  # covers the signer


@pytest.fixture(scope="module")
def three_tier() -> _ThreeTierPki:
    return _ThreeTierPki()


def _b_t(pki: SigningPki, tiers: _ThreeTierPki) -> bytes:
    """A B-T signature by the three-tier signer, time-stamped by the test TSA."""
    signer = signers.SimpleSigner(
        signing_cert=_asn1(tiers.signer),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            tiers.signer_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(tiers.issuing)]),
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
        timestamper=pki.timestamper(),
    )
    return out.getvalue()


def _with_dss(pdf: bytes, tiers: _ThreeTierPki, crls: list[asn1_crl.CertificateList]) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content,
        certs=[_asn1(tiers.signer), _asn1(tiers.issuing), _asn1(tiers.root)],
        crls=crls,
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _signature(pdf: bytes, pki: SigningPki, tiers: _ThreeTierPki) -> SignatureReport:
    anchors = TrustAnchors(
        [tiers.root.public_bytes(serialization.Encoding.PEM), pki.root_pem]
    )
    verifier = DocumentVerifier(anchors, revocation_mode=RevocationMode.SOFT_FAIL)
    (signature,) = verifier.verify(pdf).signatures
    assert signature.indication is Indication.TOTAL_PASSED, signature.reasons
    return signature


def test_the_whole_path_s_revocation_data_makes_b_lt(
    pki: SigningPki, three_tier: _ThreeTierPki
) -> None:
    crls = [three_tier.issuing_crl, three_tier.root_crl]
    pdf = _with_dss(_b_t(pki, three_tier), three_tier, crls)
    signature = _signature(pdf, pki, three_tier)
    assert signature.signer_revocation_data_in_dss
    assert signature.authorities_revocation_data_in_dss is True
    assert signature.pades_level is PadesLevel.B_LT


def test_the_signer_s_data_alone_is_not_b_lt(pki: SigningPki, three_tier: _ThreeTierPki) -> None:
    """The issuing CA's CRL (for the signer) is there; the root's (for the issuing CA) is not:
    nobody could check the issuing CA from the document alone once its CA is gone."""
    pdf = _with_dss(_b_t(pki, three_tier), three_tier, [three_tier.issuing_crl])
    signature = _signature(pdf, pki, three_tier)
    assert signature.signer_revocation_data_in_dss
    assert signature.authorities_revocation_data_in_dss is False
    assert signature.pades_level is PadesLevel.B_T


def test_without_a_dss_the_signature_is_b_t(pki: SigningPki, three_tier: _ThreeTierPki) -> None:
    signature = _signature(_b_t(pki, three_tier), pki, three_tier)
    assert signature.pades_level is PadesLevel.B_T
