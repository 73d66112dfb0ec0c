"""Signing through the keys port: levels, stamp, batch, registration, what crosses the port."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import shutil
import subprocess
from collections.abc import Callable

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from egov_common.errors import EgovError, FailedPrecondition, InvalidArgument, Unauthenticated
from egov_signing.domain.ports import Party, RegistrationSpec
from egov_signing.domain.report import Indication, PadesLevel, document_verdict
from egov_signing.domain.signing import (
    BatchItem,
    Level,
    PdfSigningService,
    RegistrationStatus,
    RemoteKeySigner,
    SignOptions,
    _ParsedCredential,
)
from egov_signing.domain.stamp import StampSpec
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from signing_testkit import FakeRegistry, SigningPki, SoftwareKeys, make_pdf


def _service(pki: SigningPki, keys: SoftwareKeys, registry: FakeRegistry | None = None):  # type: ignore[no-untyped-def]
    return PdfSigningService(
        keys,
        registry=registry,
        timestamper=pki.timestamper(),
        validation_context_factory=pki.validation_context,
    )


def _verifier(pki: SigningPki, mode: RevocationMode = RevocationMode.HARD_FAIL) -> DocumentVerifier:
    return DocumentVerifier(TrustAnchors([pki.root_pem]), revocation_mode=mode)


def _spec(key: str = "idem-1") -> RegistrationSpec:
    return RegistrationSpec(Party("TH-JUR", "0105500000001"), "certificate", key)


@pytest.mark.parametrize(
    ("level", "mode", "expected_level"),
    [
        (Level.B_B, RevocationMode.SOFT_FAIL, PadesLevel.B_B),
        (Level.B_T, RevocationMode.SOFT_FAIL, PadesLevel.B_T),
        (Level.B_LT, RevocationMode.HARD_FAIL, PadesLevel.B_LT),
        (Level.B_LTA, RevocationMode.HARD_FAIL, PadesLevel.B_LTA),
    ],
)
def test_each_level_passes_and_reaches_its_pades_level(
    pki: SigningPki,
    keys: SoftwareKeys,
    level: Level,
    mode: RevocationMode,
    expected_level: PadesLevel,
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", level))
    report = _verifier(pki, mode).verify(signed.pdf)
    first = report.signatures[0]
    assert first.indication is Indication.TOTAL_PASSED, first.reasons
    assert first.pades_level is expected_level
    assert first.signer is not None
    assert first.signer.identifier_masked == "PNOTH-1-2345-xxxxx-xx-1"
    assert report.indication is Indication.TOTAL_PASSED


def _ocsp_good(pki: SigningPki, cert: x509.Certificate) -> asn1_ocsp.OCSPResponse:
    now = dt.datetime.now(dt.UTC)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=pki.root,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(minutes=5),
            next_update=now + dt.timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.root)
        .sign(pki.root_key, hashes.SHA256())
    )
    return asn1_ocsp.OCSPResponse.load(response.public_bytes(serialization.Encoding.DER))


def _crl_der(crl: x509.CertificateRevocationList) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))


def _unrelated_crl() -> asn1_crl.CertificateList:
    now = dt.datetime.now(dt.UTC)
    return _crl_der(
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Unrelated CA")]))
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )


RevocationData = Callable[
    [SigningPki], tuple[list[asn1_crl.CertificateList], list[asn1_ocsp.OCSPResponse]]
]


@pytest.mark.parametrize(
    ("revocation_data", "expected_level"),
    [
        pytest.param(lambda pki: ([_unrelated_crl()], []), PadesLevel.B_T, id="unrelated-crl"),
        pytest.param(
            lambda pki: ([], [_ocsp_good(pki, pki.tsa)]), PadesLevel.B_T, id="ocsp-for-another-cert"
        ),
        pytest.param(lambda pki: ([_crl_der(pki.crl)], []), PadesLevel.B_LT, id="issuer-crl"),
        pytest.param(
            lambda pki: ([], [_ocsp_good(pki, pki.signer)]), PadesLevel.B_LT, id="signer-ocsp"
        ),
    ],
)
def test_b_lt_needs_revocation_data_for_the_signer_in_the_dss(
    pki: SigningPki,
    keys: SoftwareKeys,
    revocation_data: RevocationData,
    expected_level: PadesLevel,
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_T)).pdf
    crls, ocsps = revocation_data(pki)
    out = io.BytesIO(signed)
    DocumentSecurityStore.add_dss(
        out,
        PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].pkcs7_content,
        crls=crls,
        ocsps=ocsps,
    )
    sig = _verifier(pki, RevocationMode.SOFT_FAIL).verify(out.getvalue()).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED, sig.reasons
    # EN 319 142-1 B-LT: the DSS carries the validation data of this signature's certificate
    assert sig.pades_level is expected_level


def test_b_b_without_revocation_data_is_indeterminate_in_hard_fail(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    sig = _verifier(pki).verify(signed.pdf).signatures[0]
    assert (sig.indication, sig.sub_indication) == (
        Indication.INDETERMINATE,
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    )


def test_pyhanko_validator_called_directly_agrees_with_our_report(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_LT))
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    status = validate_pdf_signature(reader.embedded_signatures[0], pki.validation_context())
    ours = _verifier(pki).verify(signed.pdf).signatures[0]
    assert status.bottom_line is True
    assert ours.indication is Indication.TOTAL_PASSED
    assert (status.intact, status.valid, status.trusted) == (ours.intact, ours.valid, ours.trusted)


def test_keys_port_receives_only_digests_one_authorisation_per_document(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = make_pdf()
    _service(pki, keys).sign(pdf, SignOptions("cred-1", Level.B_LTA))
    kinds = [k for k, _ in keys.received]
    assert kinds == ["get_credential", "authorize", "sign_hash"]
    for kind, payload in keys.received[1:]:
        assert isinstance(payload, tuple)
        assert all(isinstance(h, bytes) and len(h) == 32 for h in payload), kind
        assert all(h not in pdf for h in payload)


def test_parsed_credential_is_cached_between_documents(pki: SigningPki, keys: SoftwareKeys) -> None:
    service = _service(pki, keys)
    service.sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    service.sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    assert [k for k, _ in keys.received].count("get_credential") == 1


def test_credential_is_asked_for_again_after_keys_refuses(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    service = _service(pki, keys)
    service.sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    authorize = keys.authorize

    def revoked(*args: object, **kwargs: object) -> None:
        raise FailedPrecondition("CREDENTIAL_REVOKED", "the credential is revoked")

    keys.authorize = revoked  # type: ignore[method-assign,assignment]
    with pytest.raises(EgovError):
        service.sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    keys.authorize = authorize  # type: ignore[method-assign]
    service.sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    assert [k for k, _ in keys.received].count("get_credential") == 2


def test_dry_run_never_reaches_keys(pki: SigningPki, keys: SoftwareKeys) -> None:
    calls: list[bytes] = []
    signer = RemoteKeySigner(
        _ParsedCredential.parse(keys.get_credential("cred-1")),
        on_demand=lambda d: calls.append(d) or b"",
    )
    placeholder = asyncio.run(signer.async_sign_raw(b"data", "sha256", dry_run=True))
    assert placeholder == bytes(72)
    assert calls == []


def test_stock_pyhanko_flow_with_remote_signer_spends_one_sad(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    """pyHanko's own PdfSigner (with its dry-run estimate) works with our signer unchanged."""
    credential = _ParsedCredential.parse(keys.get_credential("cred-1"))

    def on_demand(digest: bytes) -> bytes:
        sad = keys.authorize(
            "cred-1", [digest], hash_algorithm="sha256", authorization_proof="", description=""
        )
        return keys.sign_hash(
            "cred-1", sad, [digest], hash_algorithm="sha256", key_algorithm=credential.key_algorithm
        )[0]

    signer = RemoteKeySigner(credential, on_demand=on_demand)
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig1"),
        signer=signer,
    )
    assert [k for k, _ in keys.received].count("authorize") == 1
    report = _verifier(pki, RevocationMode.SOFT_FAIL).verify(out.getvalue())
    assert report.indication is Indication.TOTAL_PASSED


def test_batch_signs_every_document_under_one_sad(pki: SigningPki, keys: SoftwareKeys) -> None:
    items = [BatchItem(f"doc-{i}", make_pdf(text=f"doc {i}")) for i in range(3)]
    outcomes = _service(pki, keys).sign_batch(items, SignOptions("cred-1", Level.B_T))
    assert [o.client_reference for o in outcomes] == ["doc-0", "doc-1", "doc-2"]
    assert all(o.signed is not None and o.error is None for o in outcomes)
    authorizations = [p for k, p in keys.received if k == "authorize"]
    assert len(authorizations) == 1 and len(authorizations[0]) == 3  # type: ignore[arg-type]


def test_batch_bad_document_fails_alone(pki: SigningPki, keys: SoftwareKeys) -> None:
    items = [
        BatchItem("good-1", make_pdf()),
        BatchItem("bad", b"not a pdf"),
        BatchItem("good-2", make_pdf()),
    ]
    outcomes = _service(pki, keys).sign_batch(items, SignOptions("cred-1", Level.B_B))
    assert outcomes[0].signed is not None and outcomes[2].signed is not None
    assert outcomes[1].signed is None
    assert isinstance(outcomes[1].error, InvalidArgument)
    assert outcomes[1].error.reason == "NOT_A_PDF"


def test_keys_refusal_is_raised_with_its_reason(pki: SigningPki, keys: SoftwareKeys) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise Unauthenticated("TOKEN_EXPIRED", "the ID token expired")

    keys.authorize = refuse  # type: ignore[method-assign,assignment]
    with pytest.raises(EgovError) as err:
        _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_B))
    assert err.value.reason == "TOKEN_EXPIRED"


def test_registration_reserves_id_then_registers_final_digest(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry()
    signed = _service(pki, keys, registry).sign(
        make_pdf(), SignOptions("cred-1", Level.B_B, registration=_spec())
    )
    assert signed.registration_status is RegistrationStatus.REGISTERED
    assert registry.registered == [(signed.document_id, signed.sha256)]
    assert signed.verification_url.endswith(signed.document_id)


def test_registration_failure_still_returns_signed_pdf_as_unregistered(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    registry = FakeRegistry(fail_register=True)
    signed = _service(pki, keys, registry).sign(
        make_pdf(), SignOptions("cred-1", Level.B_B, registration=_spec())
    )
    assert signed.registration_status is RegistrationStatus.UNREGISTERED
    assert signed.registration_error is not None
    assert signed.registration_error.reason == "REGISTRY_UNAVAILABLE"
    assert signed.document_id
    assert _verifier(pki, RevocationMode.SOFT_FAIL).verify(signed.pdf).indication is (
        Indication.TOTAL_PASSED
    )


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils absent")
def test_thai_stamp_comes_back_exactly_from_pdftotext(pki: SigningPki, keys: SoftwareKeys) -> None:
    signed = _service(pki, keys, FakeRegistry()).sign(
        make_pdf(),
        SignOptions(
            "cred-1",
            Level.B_B,
            reason="รับรองสำเนาถูกต้อง",
            stamp=StampSpec(language="th", include_qr_code=True),
            registration=_spec(),
        ),
    )
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=signed.pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "ลงนามโดย สมชาย ใจดี" in text
    assert "ACME จำกัด" in text
    assert "เหตุผล รับรองสำเนาถูกต้อง" in text
    assert "พ.ศ." not in text and str(signed.signing_time.year + 543) in text


def test_signing_after_no_changes_certification_is_refused(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    service = _service(pki, keys)
    certified = service.sign(make_pdf(), SignOptions("cred-1", Level.B_B, certification=1))
    with pytest.raises(EgovError) as err:
        service.sign(certified.pdf, SignOptions("cred-1", Level.B_B))
    assert err.value.reason == "DOCUMENT_CERTIFIED_NO_CHANGES"


def test_new_field_after_no_changes_certification_is_illegal(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    certified = _service(pki, keys).sign(
        make_pdf(), SignOptions("cred-1", Level.B_B, certification=1)
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(certified.pdf))
    fields.append_signature_field(writer, fields.SigFieldSpec("Sneaky"))
    out = io.BytesIO()
    writer.write(out)
    report = _verifier(pki, RevocationMode.SOFT_FAIL).verify(out.getvalue())
    first = report.signatures[0]
    assert first.certification_level == 1
    assert first.docmdp_ok is False
    assert (first.indication, first.sub_indication) == (
        Indication.TOTAL_FAILED,
        "ILLEGAL_MODIFICATIONS",
    )
    assert report.unsigned_revisions_after_last_signature == 1
    assert report.bytes_after_last_signature > 0


def test_certification_no_changes_allows_lta_updates(pki: SigningPki, keys: SoftwareKeys) -> None:
    signed = _service(pki, keys).sign(
        make_pdf(), SignOptions("cred-1", Level.B_LTA, certification=1)
    )
    report = _verifier(pki).verify(signed.pdf)
    assert report.indication is Indication.TOTAL_PASSED
    assert report.signatures[0].docmdp_ok is True


def test_a_later_document_time_stamp_after_no_changes_certification_passes(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(
        make_pdf(), SignOptions("cred-1", Level.B_LTA, certification=1)
    )
    out = io.BytesIO()
    signers.PdfTimeStamper(pki.timestamper()).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(signed.pdf)),
        "sha256",
        validation_context=pki.validation_context(),
        output=out,
    )
    report = _verifier(pki).verify(out.getvalue())
    assert document_verdict(report).indication is Indication.TOTAL_PASSED
    assert report.signatures[0].pades_level is PadesLevel.B_LTA


def _retitled(pdf: bytes, title: str) -> bytes:
    """``pdf`` with a revision that changes only its title, as any PDF editor would."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.document_meta.title = title
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_title_rewritten_after_no_changes_certification_is_illegal(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(
        make_pdf(), SignOptions("cred-1", Level.B_LTA, certification=1)
    )
    report = _verifier(pki).verify(_retitled(signed.pdf, "Forged title"))
    first = report.signatures[0]
    assert first.modification_level == "LTA_UPDATES"  # pyHanko lets it through
    assert (first.indication, first.sub_indication) == (
        Indication.TOTAL_FAILED,
        "ILLEGAL_MODIFICATIONS",
    )
    assert "metadata was changed" in first.reasons[0]
    assert "neither a DSS update nor a document time-stamp: 4" in first.reasons[0]
    verdict = document_verdict(report)
    assert verdict.indication is Indication.TOTAL_FAILED
    # the title no signer signed is content after the last signature, whatever else failed
    assert report.metadata_changed_after_last_signature
    assert verdict.unsigned_content_after_last_signature


def test_title_rewritten_after_an_approval_signature_is_not_passed(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_LTA))
    assert document_verdict(_verifier(pki).verify(signed.pdf)).indication is (
        Indication.TOTAL_PASSED  # DSS and document time-stamp after the signature: fine
    )
    report = _verifier(pki).verify(_retitled(signed.pdf, "Forged title"))
    assert report.signatures[0].indication is Indication.TOTAL_PASSED  # what it signed holds
    # pyHanko's writer puts the title in the XMP metadata (and /Info, when there is one)
    changed = report.metadata_changed_after_last_signature
    assert changed and all("title" in entry.lower() for entry in changed), changed
    verdict = document_verdict(report)
    assert verdict.indication is Indication.INDETERMINATE
    assert verdict.unsigned_content_after_last_signature
    assert "metadata was changed after the last signature" in verdict.reason


def test_title_changed_along_with_a_dss_update_after_no_changes_certification_is_illegal(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_T, certification=1))
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.pdf))
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        PdfFileReader(io.BytesIO(signed.pdf)).embedded_signatures[0].pkcs7_content,
        certs=[pki.asn1(pki.signer), pki.asn1(pki.root)],
    )
    writer.document_meta.title = "Forged title"
    out = io.BytesIO()
    writer.write(out)
    report = _verifier(pki, RevocationMode.SOFT_FAIL).verify(out.getvalue())
    (first,) = report.signatures
    assert (first.indication, first.sub_indication) == (
        Indication.TOTAL_FAILED,
        "ILLEGAL_MODIFICATIONS",
    )
    assert first.reasons[0].endswith("its metadata was changed afterwards: XMP title")
    assert document_verdict(report).unsigned_content_after_last_signature


def test_signing_a_signed_field_again_is_refused(pki: SigningPki, keys: SoftwareKeys) -> None:
    service = _service(pki, keys)
    signed = service.sign(make_pdf(), SignOptions("cred-1", Level.B_B, field_name="Sig1"))
    with pytest.raises(EgovError) as err:
        service.sign(signed.pdf, SignOptions("cred-1", Level.B_B, field_name="Sig1"))
    assert err.value.reason == "FIELD_ALREADY_SIGNED"


def test_existing_empty_field_is_filled(pki: SigningPki, keys: SoftwareKeys) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf()))
    fields.append_signature_field(
        writer, fields.SigFieldSpec("ApproverSignature", on_page=0, box=(300, 50, 560, 140))
    )
    prepared = io.BytesIO()
    writer.write(prepared)
    signed = _service(pki, keys).sign(
        prepared.getvalue(),
        SignOptions(
            "cred-1",
            Level.B_B,
            field_name="ApproverSignature",
            stamp=StampSpec(language="en"),
        ),
    )
    report = _verifier(pki, RevocationMode.SOFT_FAIL).verify(signed.pdf)
    assert [s.field_name for s in report.signatures] == ["ApproverSignature"]
    assert report.empty_signature_fields == ()
    assert report.indication is Indication.TOTAL_PASSED


def test_report_never_shows_the_national_identifier(pki: SigningPki, keys: SoftwareKeys) -> None:
    signed = _service(pki, keys).sign(make_pdf(), SignOptions("cred-1", Level.B_LTA))
    report = _verifier(pki).verify(signed.pdf)
    shown = [
        text
        for sig in report.signatures
        for text in (
            *sig.certificate_path,
            *sig.reasons,
            sig.signer.common_name if sig.signer else "",
            sig.signer.issuer if sig.signer else "",
            sig.signer.identifier_masked if sig.signer else "",
        )
    ]
    assert not [text for text in shown if "1234567890121" in text]
    assert report.signatures[0].certificate_path[0] == "สมชาย ใจดี"
