"""A certificate whose extendedKeyUsage extension is present signs documents only when one of its
key purposes allows it (RFC 5280 4.2.1.12: the extension restricts the key to the purposes it
lists, critical or not). A time-stamping or OCSP-signing certificate chained to a trusted root
is no document signer: INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE, with the purposes it has.
Without the extension nothing is restricted (our own signing certificates, most of the corpus)."""

from __future__ import annotations

import io

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from egov_signing.domain.report import Indication, SignatureReport
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore
from signing_testkit import SigningPki, _cert, _name, make_pdf

#: RFC 9336 id-kp-documentSigning
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
#: Adobe Authentic Documents Trust
ADOBE_AUTHENTIC_DOCUMENTS = ObjectIdentifier("1.2.840.113583.1.1.5")
#: Microsoft document signing (szOID_KP_DOCUMENT_SIGNING)
MICROSOFT_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")


def _signed_by(
    pki: SigningPki,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> bytes:
    """A PAdES signature by ``cert`` (issued by the test root), with the root's CRL in the DSS
    so that the path validates in hard-fail mode."""
    signed = _pdf_signed_by(cert, key, [pki.root])
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].pkcs7_content,
        certs=[pki.asn1(cert), pki.asn1(pki.root)],
        crls=[pki.validation_context().crls[0]],
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pdf_signed_by(
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
) -> bytes:
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
        ),
    )
    return signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
    ).getvalue()


def _signer_with(
    pki: SigningPki, purposes: list[ObjectIdentifier] | None, *, critical: bool = True
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(
        _name("Somchai Jaidee", "ACME"),
        key,
        pki.root.subject,
        pki.root_key,
        ca=False,
        eku=purposes,
        crl=True,
        eku_critical=critical,
    )
    return _signed_by(pki, cert, key)


def _only_signature(pki: SigningPki, pdf: bytes) -> SignatureReport:
    verifier = DocumentVerifier(
        TrustAnchors([pki.root_pem]), revocation_mode=RevocationMode.HARD_FAIL
    )
    (signature,) = verifier.verify(pdf).signatures
    return signature


def test_the_test_tsa_s_certificate_signing_a_document_is_not_trusted(pki: SigningPki) -> None:
    # the TSA's own certificate and key (extended key usage: timeStamping only)
    sig = _only_signature(pki, _signed_by(pki, pki.tsa, pki.tsa_key))

    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    ), sig.reasons
    assert not sig.trusted
    assert "extended key usage" in sig.reasons[0] and "time_stamping" in sig.reasons[0]


@pytest.mark.parametrize(
    "purposes",
    [
        [ExtendedKeyUsageOID.TIME_STAMPING],
        [ExtendedKeyUsageOID.OCSP_SIGNING],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING],
    ],
    ids=["timeStamping", "OCSPSigning", "clientAuth", "serverAuth+codeSigning"],
)
def test_a_certificate_whose_key_purposes_exclude_document_signing_is_not_trusted(
    pki: SigningPki, purposes: list[ObjectIdentifier]
) -> None:
    sig = _only_signature(pki, _signer_with(pki, purposes))

    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    ), sig.reasons
    assert "does not allow signing documents" in sig.reasons[0], sig.reasons


def test_a_non_critical_extended_key_usage_restricts_all_the_same(pki: SigningPki) -> None:
    sig = _only_signature(
        pki, _signer_with(pki, [ExtendedKeyUsageOID.TIME_STAMPING], critical=False)
    )

    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    ), sig.reasons


@pytest.mark.parametrize(
    "purposes",
    [
        None,
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
        [ExtendedKeyUsageOID.EMAIL_PROTECTION],
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION],
        [DOCUMENT_SIGNING],
        [ADOBE_AUTHENTIC_DOCUMENTS],
        [MICROSOFT_DOCUMENT_SIGNING],
    ],
    ids=[
        "no extension",
        "anyExtendedKeyUsage",
        "emailProtection",
        "clientAuth+emailProtection",
        "id-kp-documentSigning",
        "Adobe Authentic Documents",
        "Microsoft document signing",
    ],
)
def test_a_certificate_for_document_signing_passes(
    pki: SigningPki, purposes: list[ObjectIdentifier] | None
) -> None:
    sig = _only_signature(pki, _signer_with(pki, purposes))

    assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.reasons


def test_a_trust_anchor_whose_key_purposes_exclude_document_signing_is_not_trusted() -> None:
    # a TSA certificate trusted directly (as a relying party may configure one) signs a document
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Directly trusted TSA", "ACME")
    cert = _cert(name, key, name, key, ca=False, eku=ExtendedKeyUsageOID.TIME_STAMPING)
    verifier = DocumentVerifier(
        TrustAnchors([cert.public_bytes(serialization.Encoding.PEM)]),
        revocation_mode=RevocationMode.HARD_FAIL,
    )

    (sig,) = verifier.verify(_pdf_signed_by(cert, key, [])).signatures

    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    ), sig.reasons
    assert "extended key usage (time_stamping)" in sig.reasons[0], sig.reasons
