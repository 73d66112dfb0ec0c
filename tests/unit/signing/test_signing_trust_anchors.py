"""A signer certificate that is itself a trust anchor (a relying party may trust one agency's
e-seal certificate directly), and what the report says of revocation: pyhanko-certvalidator
checks neither the validity period nor the revocation of an anchor, so the verifier does the
first itself and reports the second as not checked."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov.signing.v1 import signing_pb2 as pb
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.report import (
    Indication,
    RevocationStatus,
    SignatureReport,
    document_verdict,
)
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from egov_signing.servicer import SigningServicer
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from signing_testkit import NOW, SigningPki, SoftwareKeys, _cert, _name, make_pdf


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _signed_by(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, *chain: x509.Certificate
) -> bytes:
    """A PAdES B-B signature made by pyHanko itself with ``key`` and ``cert``."""
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(_der(cert)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(_der(c)) for c in chain]
        ),
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(
            field_name="Seal", subfilter=fields.SigSeedSubFilter.PADES
        ),
        signer=signer,
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def anchored() -> tuple[x509.Certificate, bytes]:
    """A self-signed e-seal certificate that names a CRL distribution point (so its revocation
    could be asked about), and a PDF it signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Land Department e-seal", "Land Department")
    cert = _cert(name, key, name, key, ca=False, crl=True)
    return cert, _signed_by(cert, key)


def _only_signature(pdf: bytes, anchors: list[bytes], **kwargs: object) -> SignatureReport:
    verifier = DocumentVerifier(TrustAnchors(anchors), revocation_mode=RevocationMode.HARD_FAIL)
    (signature,) = verifier.verify(pdf, **kwargs).signatures  # type: ignore[arg-type]
    return signature


def test_an_anchor_signer_passes_within_its_validity_and_its_revocation_is_not_checked(
    anchored: tuple[x509.Certificate, bytes], pki: SigningPki
) -> None:
    cert, pdf = anchored
    signature = _only_signature(pdf, [_pem(cert), pki.root_pem])
    assert signature.indication is Indication.TOTAL_PASSED, signature.reasons
    assert signature.signer_is_trust_anchor
    assert signature.revocation_status is RevocationStatus.NOT_CHECKED
    assert any("itself a trust anchor" in reason for reason in signature.reasons)


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1, 1, 2, tzinfo=dt.UTC),
        NOW - dt.timedelta(days=2),  # before its notBefore
        NOW + dt.timedelta(days=366),  # after its notAfter
        dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
    ],
    ids=["year-1", "before-not-before", "after-not-after", "year-9999"],
)
def test_an_anchor_signer_outside_its_validity_is_out_of_bounds(
    anchored: tuple[x509.Certificate, bytes], pki: SigningPki, when: dt.datetime
) -> None:
    cert, pdf = anchored
    verifier = DocumentVerifier(TrustAnchors([_pem(cert), pki.root_pem]))
    report = verifier.verify(pdf, validation_time=when)
    (signature,) = report.signatures
    assert (signature.indication, signature.sub_indication) == (
        Indication.INDETERMINATE,
        "OUT_OF_BOUNDS_NO_POE",
    )
    assert not signature.trusted
    assert "not valid at the validation time" in signature.reasons[0]
    assert document_verdict(report).indication is Indication.INDETERMINATE


def test_a_root_ca_signing_a_document_itself_is_not_trusted(pki: SigningPki) -> None:
    """A root CA's key signs certificates and CRLs (keyCertSign, cRLSign), never documents:
    pyHanko waives the signer's key-usage check for an anchor; the verifier does not."""
    pdf = _signed_by(pki.root, pki.root_key)
    signature = _only_signature(pdf, [pki.root_pem])
    assert (signature.indication, signature.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    )
    assert not signature.trusted
    assert "key_cert_sign" in signature.reasons[0]


def test_the_same_signer_not_configured_as_anchor_is_not_trusted(
    anchored: tuple[x509.Certificate, bytes], pki: SigningPki
) -> None:
    _, pdf = anchored
    signature = _only_signature(pdf, [pki.root_pem])
    assert signature.indication is Indication.INDETERMINATE
    assert not signature.signer_is_trust_anchor
    assert signature.revocation_status is RevocationStatus.UNKNOWN


def test_revocation_status_follows_the_mode_the_verifier_used(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    """GOOD only from a hard-fail validation: the same document verified in soft-fail mode
    (missing revocation data tolerated) says UNKNOWN, whatever the verifier's default."""
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    pdf = service.sign(make_pdf(), SignOptions("cred-1", Level.B_LT)).pdf
    verifier = DocumentVerifier(TrustAnchors([pki.root_pem]))
    (hard,) = verifier.verify(pdf).signatures
    (soft,) = verifier.verify(pdf, revocation_mode=RevocationMode.SOFT_FAIL).signatures
    assert hard.indication is soft.indication is Indication.TOTAL_PASSED
    assert hard.revocation_status is RevocationStatus.GOOD
    assert soft.revocation_status is RevocationStatus.UNKNOWN


def test_the_servicer_reports_an_anchor_signer_as_not_checked(
    anchored: tuple[x509.Certificate, bytes], pki: SigningPki
) -> None:
    cert, pdf = anchored
    verifier = DocumentVerifier(TrustAnchors([_pem(cert), pki.root_pem]))
    servicer = SigningServicer(
        signing=None,  # type: ignore[arg-type]
        verifier=lambda: verifier,
        limits=DocumentLimits(),
    )
    response = servicer.VerifyDocument(
        iter([pb.VerifyDocumentRequest(chunk=pdf)]), None  # type: ignore[arg-type]
    )
    (signature,) = response.report.signatures
    assert signature.indication == pb.INDICATION_TOTAL_PASSED
    assert signature.revocation_status == pb.REVOCATION_STATUS_NOT_CHECKED
