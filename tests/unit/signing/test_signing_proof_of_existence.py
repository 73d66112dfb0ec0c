"""A signer certificate revoked after a signature was made does not undo that signature, when
something proves the signature existed before the revocation (ETSI EN 319 102-1 5.5, 5.6): a
trusted signature time-stamp earlier than the revocation time. Without one (B-B, a time-stamp
that cannot be trusted), or with one at or after the revocation time, or when the issuer says the
key was compromised earlier (RFC 5280 5.3.2 invalidityDate), the signature stays
INDETERMINATE/REVOKED_NO_POE. Revocation data comes from the document or from a revocation
service the verifier asks (served here in process: no network)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from egov_signing.domain.report import (
    Indication,
    RevocationStatus,
    SignatureReport,
    document_verdict,
)
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko_certvalidator.fetchers.api import (
    CertificateFetcher,
    CRLFetcher,
    FetcherBackend,
    Fetchers,
    OCSPFetcher,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore
from signing_testkit import SigningPki, SoftwareKeys, _cert, _name, make_pdf, make_pki

# -- building blocks ---------------------------------------------------------------------------


def _signed(pki: SigningPki, keys: SoftwareKeys, level: Level) -> bytes:
    """Our own signature at ``level`` (B-LT carries the test CA's CRL of the signing time, which
    says the signer is not revoked)."""
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    return service.sign(make_pdf(), SignOptions("cred-1", level)).pdf


def _time_stamp_time(pdf: bytes) -> dt.datetime:
    """genTime of the signature time-stamp of the document's only signature."""
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    (token,) = extract_tst_data_iter(signature.signer_info, signed=False)
    when: dt.datetime = token["encap_content_info"]["content"].parsed["gen_time"].native
    return when


def _crl(
    pki: SigningPki,
    *,
    revoked: x509.Certificate | None = None,
    revoked_at: dt.datetime | None = None,
    reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
    compromised_since: dt.datetime | None = None,
    issued_at: dt.datetime,
) -> asn1_crl.CertificateList:
    """The test root's CRL issued at ``issued_at`` (valid a week), listing ``revoked`` (default:
    the signer) as revoked at ``revoked_at`` for ``reason``, with an invalidityDate when
    ``compromised_since`` is given."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(issued_at)
        .next_update(issued_at + dt.timedelta(days=7))
    )
    if revoked_at is not None:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number((revoked or pki.signer).serial_number)
            .revocation_date(revoked_at)
            .add_extension(x509.CRLReason(reason), critical=False)
        )
        if compromised_since is not None:
            entry = entry.add_extension(x509.InvalidityDate(compromised_since), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(pki.root_key, hashes.SHA256())
    return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))


class _ServedCrls(CRLFetcher):
    def __init__(self, crls: list[asn1_crl.CertificateList]) -> None:
        self._crls = crls
        self._asked: set[bytes] = set()

    async def fetch(
        self, cert: Any, *, use_deltas: Any = None
    ) -> Iterable[asn1_crl.CertificateList]:
        self._asked.add(cert.dump())
        return list(self._crls)

    def fetched_crls(self) -> Iterable[asn1_crl.CertificateList]:
        return list(self._crls) if self._asked else []

    def fetched_crls_for_cert(self, cert: Any) -> Iterable[asn1_crl.CertificateList]:
        if cert.dump() not in self._asked:
            raise KeyError(cert)
        return list(self._crls)


class _NoOcsp(OCSPFetcher):
    async def fetch(self, cert: Any, authority: Any) -> Any:
        raise AssertionError("the test certificates name no OCSP responder")

    def fetched_responses(self) -> Iterable[Any]:
        return []

    def fetched_responses_for_cert(self, cert: Any) -> Iterable[Any]:
        return []


class _NoCertificates(CertificateFetcher):
    async def _none(self) -> AsyncGenerator[asn1_x509.Certificate, None]:
        for cert in ():
            yield cert

    def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[asn1_x509.Certificate, None]:
        return self._none()

    def fetch_crl_issuers(
        self, certificate_list: Any
    ) -> AsyncGenerator[asn1_x509.Certificate, None]:
        return self._none()

    def fetched_certs(self) -> Iterable[asn1_x509.Certificate]:
        return []


class _RevocationService(FetcherBackend):
    """What the verifier's on-line fetching reaches: the CA's current CRL, in process."""

    def __init__(self, crl: asn1_crl.CertificateList) -> None:
        self.crl = crl

    def get_fetchers(self) -> Fetchers:
        return Fetchers(
            ocsp_fetcher=_NoOcsp(),
            crl_fetcher=_ServedCrls([self.crl]),
            cert_fetcher=_NoCertificates(),
        )

    async def close(self) -> None:
        return None


def _with_dss(pdf: bytes, pki: SigningPki, crl: asn1_crl.CertificateList) -> bytes:
    """``pdf`` with ``crl`` added to its DSS afterwards (as a later LTV update does)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content,
        certs=[pki.asn1(pki.signer), pki.asn1(pki.root), pki.asn1(pki.tsa)],
        crls=[crl],
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _only_signature(
    pki: SigningPki,
    pdf: bytes,
    *,
    at: dt.datetime,
    served: asn1_crl.CertificateList | None = None,
) -> SignatureReport:
    verifier = DocumentVerifier(
        TrustAnchors([pki.root_pem]),
        revocation_mode=RevocationMode.HARD_FAIL,
        fetcher_backend=_RevocationService(served) if served is not None else None,
    )
    report = verifier.verify(pdf, validation_time=at)
    (signature,) = report.signatures
    return signature


def _stamp(when: dt.datetime) -> str:
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"


# -- revoked after the signature time-stamp: passes --------------------------------------------


@pytest.mark.parametrize("source", ["fetched on line", "in the document's DSS"])
def test_a_b_t_signature_revoked_after_its_time_stamp_passes(
    pki: SigningPki, keys: SoftwareKeys, source: str
) -> None:
    pdf = _signed(pki, keys, Level.B_T)
    stamped = _time_stamp_time(pdf)
    revoked_at = (stamped + dt.timedelta(hours=1)).replace(microsecond=0)  # CRLs say seconds
    crl = _crl(pki, revoked_at=revoked_at, issued_at=revoked_at + dt.timedelta(minutes=5))
    at = stamped + dt.timedelta(days=1)

    if source == "fetched on line":
        sig = _only_signature(pki, pdf, at=at, served=crl)
    else:
        pdf = _with_dss(pdf, pki, crl)
        sig = _only_signature(pki, pdf, at=at)

    assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.reasons
    assert sig.trusted and sig.timestamp_trusted
    # the certificate is revoked all the same, and the report says when and why it still passes
    assert sig.revoked and sig.revocation_status is RevocationStatus.REVOKED
    assert sig.revoked_at == revoked_at
    assert sig.revocation_reason == "key_compromise"
    why = " ".join(sig.reasons)
    assert f"revoked at {_stamp(revoked_at)}" in why, sig.reasons
    assert f"proof of existence at {_stamp(stamped)}" in why, sig.reasons


def test_a_b_lt_signature_passes_once_its_stored_revocation_data_expired_and_the_signer_is_revoked(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _signed(pki, keys, Level.B_LT)  # its DSS CRL is valid for a week
    stamped = _time_stamp_time(pdf)
    revoked_at = stamped + dt.timedelta(days=8)
    current = _crl(pki, revoked_at=revoked_at, issued_at=revoked_at + dt.timedelta(hours=1))

    sig = _only_signature(pki, pdf, at=stamped + dt.timedelta(days=10), served=current)

    assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.reasons
    assert sig.revocation_status is RevocationStatus.REVOKED
    assert any("proof of existence" in r for r in sig.reasons), sig.reasons


def test_a_document_whose_signer_was_revoked_after_its_time_stamp_passes_as_a_whole(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _signed(pki, keys, Level.B_T)
    stamped = _time_stamp_time(pdf)
    crl = _crl(
        pki, revoked_at=stamped + dt.timedelta(hours=1), issued_at=stamped + dt.timedelta(hours=2)
    )
    verifier = DocumentVerifier(
        TrustAnchors([pki.root_pem]), fetcher_backend=_RevocationService(crl)
    )

    report = verifier.verify(pdf, validation_time=stamped + dt.timedelta(days=1))

    assert document_verdict(report).indication is Indication.TOTAL_PASSED


# -- no proof of existence before the revocation: not passed ------------------------------------


@pytest.mark.parametrize(
    "before", [dt.timedelta(minutes=1), dt.timedelta(0)], ids=["before", "at the same second"]
)
def test_a_signature_revoked_at_or_before_its_time_stamp_is_not_passed(
    pki: SigningPki, keys: SoftwareKeys, before: dt.timedelta
) -> None:
    pdf = _signed(pki, keys, Level.B_T)
    stamped = _time_stamp_time(pdf)
    # key compromise, published after the time-stamp but dated at or before it
    revoked_at = stamped - before
    crl = _crl(pki, revoked_at=revoked_at, issued_at=stamped + dt.timedelta(hours=1))

    sig = _only_signature(pki, pdf, at=stamped + dt.timedelta(days=1), served=crl)

    assert (sig.indication, sig.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")
    assert sig.revocation_status is RevocationStatus.REVOKED
    assert f"revoked at {_stamp(revoked_at)}" in sig.reasons[0], sig.reasons
    assert "at or before" in sig.reasons[0], sig.reasons


def test_a_key_compromised_before_the_time_stamp_is_not_excused_by_a_later_revocation(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _signed(pki, keys, Level.B_T)
    stamped = _time_stamp_time(pdf)
    # revoked after the time-stamp, but the CA says the key was compromised a day before it
    compromised = stamped - dt.timedelta(days=1)
    crl = _crl(
        pki,
        revoked_at=stamped + dt.timedelta(hours=1),
        compromised_since=compromised,
        issued_at=stamped + dt.timedelta(hours=2),
    )

    sig = _only_signature(pki, pdf, at=stamped + dt.timedelta(days=1), served=crl)

    assert (sig.indication, sig.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")
    assert f"compromised since {_stamp(compromised)}" in sig.reasons[0], sig.reasons


def test_a_b_b_signature_whose_signer_was_revoked_stays_revoked_no_poe(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _signed(pki, keys, Level.B_B)
    signed_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    crl = _crl(
        pki,
        revoked_at=signed_at + dt.timedelta(hours=1),
        issued_at=signed_at + dt.timedelta(hours=2),
    )

    sig = _only_signature(pki, pdf, at=signed_at + dt.timedelta(days=1), served=crl)

    assert (sig.indication, sig.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")
    assert sig.revocation_status is RevocationStatus.REVOKED
    assert "no trusted signature time-stamp" in sig.reasons[0], sig.reasons


def test_a_time_stamp_that_cannot_be_trusted_is_no_proof_of_existence(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    foreign = make_pki()  # its TSA chains to a root the verifier does not trust
    service = PdfSigningService(
        keys, timestamper=foreign.timestamper(), validation_context_factory=pki.validation_context
    )
    pdf = service.sign(make_pdf(), SignOptions("cred-1", Level.B_T)).pdf
    stamped = _time_stamp_time(pdf)
    crl = _crl(
        pki, revoked_at=stamped + dt.timedelta(hours=1), issued_at=stamped + dt.timedelta(hours=2)
    )

    sig = _only_signature(pki, pdf, at=stamped + dt.timedelta(days=1), served=crl)

    assert (sig.indication, sig.sub_indication) == (Indication.INDETERMINATE, "REVOKED_NO_POE")
    assert not sig.timestamp_trusted
    assert "no trusted signature time-stamp" in sig.reasons[0], sig.reasons


@pytest.mark.parametrize(
    ("restriction", "reason"),
    [
        ({"eku": ExtendedKeyUsageOID.TIME_STAMPING}, "extended key usage (time_stamping)"),
        ({"non_repudiation": False}, "does not include non_repudiation"),
    ],
    ids=["time-stamping only", "no nonRepudiation"],
)
def test_a_proof_of_existence_does_not_excuse_a_certificate_that_may_not_sign_documents(
    pki: SigningPki, restriction: dict[str, Any], reason: str
) -> None:
    # revoked after the time-stamp, so pyHanko's validation never reached its key usage
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(
        _name("Not a signer", "ACME"),
        key,
        pki.root.subject,
        pki.root_key,
        ca=False,
        crl=True,
        **restriction,
    )
    signer = signers.SimpleSigner(
        signing_cert=pki.asn1(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([pki.asn1(pki.root)]),
    )
    pdf = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
        timestamper=pki.timestamper(),
    ).getvalue()
    stamped = _time_stamp_time(pdf)
    crl = _crl(
        pki,
        revoked=cert,
        revoked_at=stamped + dt.timedelta(hours=1),
        issued_at=stamped + dt.timedelta(hours=2),
    )

    sig = _only_signature(pki, pdf, at=stamped + dt.timedelta(days=1), served=crl)

    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    ), sig.reasons
    assert reason in sig.reasons[0], sig.reasons
