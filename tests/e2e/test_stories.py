"""The three stories of DESIGN.md across real processes (identity, keys, registry, signing, verify
portal), the same story code ``make demo`` runs (``egov_testing.demo``)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from egov.keys.v1 import keys_pb2
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2
from egov.type.v1 import crypto_pb2
from egov_testing import demo
from egov_testing.platform import (
    Platform,
    pyhanko_validate,
    qpdf_check,
    sample_pdf,
    swap_page_after_signing,
)
from pyhanko.sign.diff_analysis import ModificationLevel

pytestmark = pytest.mark.slow

PASSED = signing_pb2.INDICATION_TOTAL_PASSED
FAILED = signing_pb2.INDICATION_TOTAL_FAILED


def _name(enum: type, value: int) -> str:
    return enum.Name(value)  # type: ignore[attr-defined,no-any-return]


def _verdict(report: signing_pb2.ValidationReport) -> str:
    return f"{demo.indication_text(report)}: {report.reason}"


def _needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make system-deps)")


# --- story 1: a citizen signs ----------------------------------------------------------------


def test_a_citizen_proofed_at_ial_2_3_logs_in_at_aal2_through_the_portal(
    citizen_signed: demo.CitizenSigned,
) -> None:
    session = citizen_signed.session
    assert session.achieved_ial == "2.3"
    claims = session.claims
    assert claims["acr"] == "urn:egov:aal:2"
    assert "otp" in claims["amr"]
    assert claims["identifier"] == session.citizen.identifier
    assert claims["verified_claims"]["verification"]["assurance_level"] == "2.3"


def test_an_unmodified_oidc_client_logs_the_citizen_in_over_http_and_the_token_signs(
    platform: Platform,
) -> None:
    session = platform.enrol_citizen(platform.synthetic_citizen(1), over_http=True)
    assert session.claims["acr"] == "urn:egov:aal:2"
    assert session.claims["identifier"] == session.citizen.identifier
    credential = platform.issue_citizen_credential(session)
    signed = platform.sign(
        sample_pdf("Tax return 2569"),
        signing_pb2.SignOptions(
            credential_id=credential.credential_id,
            authorization_proof=session.id_token,
            level=crypto_pb2.PADES_LEVEL_B_B,
        ),
    )
    report = platform.verify(signed.pdf).report
    assert report.indication == PASSED, _verdict(report)


def test_keys_issues_the_citizen_a_natural_person_credential(
    citizen_signed: demo.CitizenSigned, platform: Platform
) -> None:
    credential = citizen_signed.credential
    assert credential.kind == keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON
    assert credential.status == keys_pb2.CREDENTIAL_STATUS_ACTIVE
    leaf = x509.load_der_x509_certificate(credential.certificate_chain[0])
    serial = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == "PNOTH-" + citizen_signed.session.citizen.national_id
    root = x509.load_der_x509_certificate(credential.certificate_chain[-1])
    assert root == platform.root_certificate()


def test_the_citizens_b_lt_pdf_validates_in_pyhanko_with_our_root(
    citizen_signed: demo.CitizenSigned,
) -> None:
    assert citizen_signed.signed.result.level == crypto_pb2.PADES_LEVEL_B_LT
    [status] = citizen_signed.pyhanko
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.bottom_line
    serial = format(status.signing_cert.serial_number, "x")
    assert serial == citizen_signed.credential.certificate_serial.lower().lstrip("0")


def test_the_citizens_pdf_is_valid_and_trusted_in_pdfsig(
    citizen_signed: demo.CitizenSigned,
) -> None:
    _needs("pdfsig", "certutil")
    assert "Signature is Valid" in citizen_signed.pdfsig_output, citizen_signed.pdfsig_output
    assert "Certificate is Trusted" in citizen_signed.pdfsig_output, citizen_signed.pdfsig_output


def test_the_citizens_pdf_passes_qpdf_check(citizen_signed: demo.CitizenSigned) -> None:
    _needs("qpdf")
    code, output = citizen_signed.qpdf
    assert code == 0, output


def test_our_report_agrees_with_pyhanko_on_the_citizens_pdf(
    platform: Platform, citizen_signed: demo.CitizenSigned
) -> None:
    case = demo.verify_citizen_document(platform, citizen_signed)
    assert case.report.indication == PASSED, _verdict(case.report)
    [signature] = case.report.signatures
    assert signature.intact and signature.valid and signature.trusted
    assert signature.pades_level == crypto_pb2.PADES_LEVEL_B_LT
    assert signature.signer.masked_identifier.startswith("PNOTH-")
    # The report names the signer by a masked identifier only (DESIGN.md, "VerifyDocument"); the
    # chain is "by subject common name" (signing.proto), not full DNs with the serialNumber.
    national_id = citizen_signed.session.citizen.national_id
    shown = [signature.signer.name, signature.signer.masked_identifier, *signature.chain]
    assert not [text for text in shown if national_id in text], shown


# --- story 2: an agency issues a certificate -------------------------------------------------


def test_the_agency_seal_signs_at_b_lta_and_the_document_is_registered(
    platform: Platform, issued: demo.IssuedCertificate
) -> None:
    result = issued.signed.result
    assert result.level == crypto_pb2.PADES_LEVEL_B_LTA
    assert result.registration_status == signing_pb2.REGISTRATION_STATUS_REGISTERED, (
        result.registration_error
    )
    document = issued.document
    assert document.document_id == result.document_id
    assert document.sha256 == result.sha256
    assert document.issuer.value == platform.agency.identifier.partition(":")[2]
    assert document.status == registry_pb2.DOCUMENT_STATUS_REGISTERED
    assert result.verification_url == f"{platform.verify_portal_url}/verify/{result.document_id}"


def test_the_certificate_has_a_thai_visible_stamp(
    issued: demo.IssuedCertificate, tmp_path: Path
) -> None:
    _needs("pdftotext")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(issued.signed.pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "กรมพัฒนาธุรกิจการค้า" in text  # the seal's organisation, shaped and extractable
    # The certificate has O in English and in Thai: the stamp shows names, not a Python list.
    assert "['" not in text, text
    assert re.search(r"25\d\d", text), "a Buddhist-era year on the stamp"


def test_the_certificate_passes_qpdf_check(issued: demo.IssuedCertificate, work_dir: Path) -> None:
    _needs("qpdf")
    code, output = qpdf_check(issued.signed.pdf, work_dir)
    assert code == 0, output


def test_the_inclusion_proof_of_the_certificate_verifies_client_side(
    issued: demo.IssuedCertificate,
) -> None:
    proof = issued.proof
    assert proof.document.document_id == issued.document.document_id
    assert proof.tree_head.tree_size >= 1


def test_the_qr_link_opens_the_certificate_in_the_verify_portal(
    issued: demo.IssuedCertificate,
) -> None:
    page = httpx.get(issued.signed.result.verification_url, follow_redirects=True, timeout=30)
    assert page.status_code == 200
    assert issued.document.document_id in page.text


# --- story 3: a relying party verifies -------------------------------------------------------


def test_the_genuine_certificate_passes_with_its_registry_entry(
    platform: Platform, issued: demo.IssuedCertificate
) -> None:
    case = demo.verify_genuine(platform, issued)
    report = case.report
    assert report.indication == PASSED, _verdict(report)
    assert report.registry.status == signing_pb2.REGISTRY_CHECK_STATUS_REGISTERED
    assert report.registry.inclusion_verified
    assert not report.unsigned_content_after_last_signature
    assert all(s.indication == PASSED for s in report.signatures)
    assert b"total-passed" in case.response.etsi_xml.lower()
    # pyHanko on its own agrees.
    [status] = pyhanko_validate(case.pdf, platform.root_certificate())
    assert status.bottom_line, status.pretty_print_details()
    [signature] = [s for s in report.signatures if s.kind == signing_pb2.SIGNATURE_KIND_SIGNATURE]
    organization = signature.signer.organization
    assert platform.agency.name_en in organization or platform.agency.name_th in organization
    assert not organization.startswith("["), f"a Python list, not a name: {organization}"


def test_a_flipped_byte_in_the_signed_range_fails_with_hash_failure(
    platform: Platform, issued: demo.IssuedCertificate
) -> None:
    case = demo.verify_byte_flipped(platform, issued)
    report = case.report
    assert report.indication == FAILED, _verdict(report)
    assert report.sub_indication == signing_pb2.SUB_INDICATION_HASH_FAILURE, _verdict(report)
    assert not report.signatures[0].intact
    # pyHanko on its own agrees.
    [status] = pyhanko_validate(case.pdf, platform.root_certificate())
    assert not status.intact and not status.bottom_line


def test_a_page_swapped_after_signing_fails_although_pdfsig_calls_it_valid(
    platform: Platform, issued: demo.IssuedCertificate, work_dir: Path
) -> None:
    case = demo.verify_page_swapped(platform, issued, work_dir)
    report = case.report
    assert report.indication == FAILED, _verdict(report)
    assert report.sub_indication == signing_pb2.SUB_INDICATION_ILLEGAL_MODIFICATIONS, _verdict(
        report
    )
    assert report.revision_count >= 2
    # pyHanko on its own agrees: intact bytes, but a change after signing that is not allowed.
    [status] = pyhanko_validate(case.pdf, platform.root_certificate())
    assert status.intact and not status.bottom_line
    assert status.modification_level == ModificationLevel.OTHER
    if shutil.which("pdfsig"):
        # pdfsig checks digests only: it is no evidence (DESIGN.md, "Verification fails closed").
        assert "Signature is Valid" in case.pdfsig_output, case.pdfsig_output


def test_a_revoked_signer_is_not_passed_and_the_reason_names_revocation(
    platform: Platform, citizen_signed: demo.CitizenSigned
) -> None:
    case = demo.verify_revoked_signer(platform, citizen_signed.session)
    assert case.extra["credential_status"] == "CREDENTIAL_STATUS_REVOKED"
    report = case.report
    assert report.indication != PASSED, _verdict(report)
    assert report.sub_indication in (
        signing_pb2.SUB_INDICATION_REVOKED,
        signing_pb2.SUB_INDICATION_REVOKED_NO_POE,
    ), _verdict(report)
    assert "revoked" in report.reason.lower(), _verdict(report)
    [signature] = report.signatures
    assert signature.revocation_status == signing_pb2.REVOCATION_STATUS_REVOKED, _name(
        signing_pb2.RevocationStatus, signature.revocation_status
    )
    assert "compromise" in signature.revocation_reason.lower()  # why keys revoked it
    assert signature.HasField("revoked_at")


def test_a_revoked_registry_entry_fails_with_the_issuers_reason(platform: Platform) -> None:
    case = demo.verify_revoked_registry_entry(platform)
    report = case.report
    assert report.indication != PASSED, _verdict(report)
    assert report.registry.status == signing_pb2.REGISTRY_CHECK_STATUS_REVOKED
    history = report.registry.document.history
    assert any(demo.REGISTRY_REVOCATION_TEXT in change.reason_text for change in history)
    assert "revoked" in report.reason.lower(), _verdict(report)
    # The signature itself is fine: only the registry entry makes the document fail.
    assert all(s.indication == PASSED for s in report.signatures)
    assert "PASSED" not in case.response.summary.splitlines()[0], case.response.summary


def test_a_relying_party_without_code_gets_the_same_verdicts_from_the_verify_portal(
    platform: Platform, issued: demo.IssuedCertificate
) -> None:
    verdicts = {}
    for name, pdf in (
        ("genuine", issued.signed.pdf),
        ("page-swapped", swap_page_after_signing(issued.signed.pdf)),
    ):
        page = httpx.post(
            platform.verify_portal_url + "/verify",
            files={"file": (f"{name}.pdf", pdf, "application/pdf")},
            data={"lang": "en"},
            timeout=120,
        )
        assert page.status_code == 200, page.text[:500]
        found = re.search(r'data-verdict="([a-z_-]+)"', page.text)
        assert found, page.text[:500]
        verdicts[name] = found.group(1)
    assert verdicts == {"genuine": "valid", "page-swapped": "invalid"}


# --- the keys service never sees the PDF; signing never sees a key ---------------------------

_AUDIT_DETAIL_KEYS = {"hashes", "hash_algorithm", "binding", "description", "scheme"}


def test_keys_authorises_and_signs_digests_only(
    platform: Platform, citizen_signed: demo.CitizenSigned
) -> None:
    events = platform.audit_events(citizen_signed.credential.credential_id)
    actions = [event.action for event in events]
    assert "sad.authorize" in actions and "signature.batch" in actions, actions
    for event in events:
        if event.action not in ("sad.authorize", "signature.batch"):
            continue
        details = json.loads(event.details_json)
        assert set(details) <= _AUDIT_DETAIL_KEYS, details
        assert details["hashes"] == 1
        assert details["hash_algorithm"].lower().replace("-", "") in ("sha256", "sha384", "sha512")
        assert re.fullmatch(r"[0-9a-f]{64}", details["binding"]), details
    assert "%PDF" not in platform.log_text("KEYS")
    signing_events = [e for e in events if e.action == "signature.batch"]
    assert all(e.actor.endswith("signing") for e in signing_events), [e.actor for e in events]


def test_no_private_key_reaches_the_signing_service(
    platform: Platform, citizen_signed: demo.CitizenSigned, issued: demo.IssuedCertificate
) -> None:
    signing = platform.processes["SIGNING"]
    assert "PRIVATE KEY" not in platform.log_text("SIGNING")
    files = [p for p in signing.data_dir.rglob("*") if p.is_file() and p.name != ".lock"]
    # Stateless: nothing but its own mTLS certificate and key on disk.
    assert {p.relative_to(signing.data_dir).parts[0] for p in files} <= {"tls"}, files
    own = x509.load_pem_x509_certificate((signing.data_dir / "tls" / "signing.pem").read_bytes())
    signers = [
        x509.load_der_x509_certificate(chain[0]).public_key()
        for chain in (citizen_signed.credential.certificate_chain,)
    ]
    signers.append(status_signer(issued))
    for path in files:
        if b"PRIVATE KEY" in path.read_bytes():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert key.public_key() == own.public_key(), path
            assert all(key.public_key() != signer for signer in signers), path


def status_signer(issued: demo.IssuedCertificate) -> object:
    """The public key of the agency's seal certificate, as embedded in the signed PDF."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    [signature] = PdfFileReader(io.BytesIO(issued.signed.pdf)).embedded_regular_signatures
    return x509.load_der_x509_certificate(signature.signer_cert.dump()).public_key()


# --- make demo ---------------------------------------------------------------------------------


def test_the_demo_writes_each_pdf_with_its_reports(
    platform: Platform, issued: demo.IssuedCertificate, tmp_path: Path
) -> None:
    case = demo.verify_genuine(platform, issued)
    demo.write_case(tmp_path, case)
    assert (tmp_path / "genuine-certificate.pdf").read_bytes() == issued.signed.pdf
    report = json.loads((tmp_path / "genuine-certificate.report.json").read_text("utf-8"))
    assert report["indication"] == "INDICATION_TOTAL_PASSED"
    xml = ElementTree.fromstring((tmp_path / "genuine-certificate.etsi.xml").read_bytes())
    assert xml.tag.endswith("ValidationReport")
    assert (tmp_path / "genuine-certificate.summary.txt").read_text("utf-8").strip()
    assert demo.as_expected(case)
    demo.write_index(tmp_path, [case], issued)
    index = json.loads((tmp_path / "index.json").read_text("utf-8"))
    assert index["issued_certificate"]["document_id"] == issued.document.document_id
    assert index["cases"][0]["as_expected"] is True
