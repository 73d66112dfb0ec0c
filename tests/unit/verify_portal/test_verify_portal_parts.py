"""The verify portal's pieces: proto mapping, i18n dates, sealing, upload reading, PDF summary."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import shutil
import subprocess
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import uharfbuzz
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2
from egov.type.v1 import crypto_pb2, party_pb2
from egov_clients.registry import LogVerificationError
from egov_testing.fake_registry import RegistryWithEntries
from egov_verify_portal.adapters import peers
from egov_verify_portal.domain.report import (
    MAX_SHOWN_CHARS,
    ProofCheck,
    RegistryFinding,
    RegistryStatus,
    Verdict,
    clipped,
)
from egov_verify_portal.domain.services import DocumentRejected, PeerUnavailable, RejectionReason
from egov_verify_portal.domain.summary_pdf import MARGIN, _Page, break_lines, render_summary
from egov_verify_portal.i18n import Translator
from egov_verify_portal.seal import SealBroken, open_report, seal_report
from egov_verify_portal.upload import UploadProblem, UploadRefused, read_upload
from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st
from pyhanko.pdf_utils.writer import PdfFileWriter
from starlette.testclient import TestClient
from verify_portal_fixtures import (
    FONTS,
    MINIMAL_PDF,
    NOW,
    SIGNER_TH,
    FakeTrustServices,
    registered,
    report,
    signature,
)


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


# ---- proto -> report ------------------------------------------------------------------------


def verify_response(**overrides: object) -> signing_pb2.VerifyDocumentResponse:
    sig = signing_pb2.SignatureReport(
        field_name="Signature1",
        kind=signing_pb2.SIGNATURE_KIND_SIGNATURE,
        indication=signing_pb2.INDICATION_TOTAL_PASSED,
        signer=signing_pb2.Signer(
            name=SIGNER_TH,
            organization="กรมการปกครอง",
            masked_identifier="PNOTH-1-2345-xxxxx-xx-1",
            issuer="egov Natural Person CA",
        ),
        claimed_signing_time=ts(datetime(2026, 11, 25, 4, 49, tzinfo=UTC)),
        timestamp_time=ts(datetime(2026, 11, 25, 4, 50, tzinfo=UTC)),
        intact=True,
        valid=True,
        trusted=True,
        coverage=signing_pb2.COVERAGE_ENTIRE_FILE,
        modification_level=signing_pb2.MODIFICATION_LEVEL_NONE,
        docmdp_ok=True,
        pades_level=crypto_pb2.PADES_LEVEL_B_LTA,
        revocation_status=signing_pb2.REVOCATION_STATUS_GOOD,
        chain=[SIGNER_TH, "egov Natural Person CA", "egov Root CA"],
    )
    for key, value in overrides.items():
        setattr(sig, key, value)
    return signing_pb2.VerifyDocumentResponse(
        report=signing_pb2.ValidationReport(
            indication=sig.indication,
            sub_indication=sig.sub_indication,
            signatures=[sig],
            validation_time=ts(NOW),
        ),
        etsi_xml=b"<ValidationReport/>",
    )


def test_a_passed_signature_maps_to_valid_with_trusted_time() -> None:
    pdf = b"%PDF-1.7 signed"
    result = peers._report(
        verify_response(), "a.pdf", pdf, RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    assert result.verdict is Verdict.VALID
    assert result.sha256_hex == hashlib.sha256(pdf).hexdigest()
    assert result.etsi_xml == b"<ValidationReport/>"
    (sig,) = result.signatures
    assert sig.signer_name == SIGNER_TH
    assert sig.time_is_trusted and sig.signed_at == datetime(2026, 11, 25, 4, 50, tzinfo=UTC)
    assert sig.pades_level == "B-LTA"
    assert sig.covers_whole_document and sig.modifications == "NONE"
    assert sig.revocation_status == "GOOD"


def test_a_document_time_stamp_alone_is_never_valid() -> None:
    response = verify_response(kind=signing_pb2.SIGNATURE_KIND_DOCUMENT_TIMESTAMP)
    result = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    assert result.main_signer is None
    assert result.verdict is Verdict.INDETERMINATE


def test_a_hash_failure_maps_to_not_valid_with_its_sub_indication() -> None:
    response = verify_response(
        indication=signing_pb2.INDICATION_TOTAL_FAILED,
        sub_indication=signing_pb2.SUB_INDICATION_HASH_FAILURE,
        intact=False,
    )
    result = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    assert result.verdict is Verdict.INVALID
    assert result.signatures[0].sub_indication == "HASH_FAILURE"


def test_a_signature_without_time_stamp_shows_the_claimed_time_as_claimed() -> None:
    response = verify_response()
    response.report.signatures[0].ClearField("timestamp_time")
    result = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    sig = result.signatures[0]
    assert not sig.time_is_trusted
    assert sig.signed_at == datetime(2026, 11, 25, 4, 49, tzinfo=UTC)


def test_forbidden_changes_after_signing_are_not_allowed() -> None:
    response = verify_response(
        coverage=signing_pb2.COVERAGE_ENTIRE_REVISION,
        modification_level=signing_pb2.MODIFICATION_LEVEL_OTHER,
    )
    result = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    sig = result.signatures[0]
    assert sig.coverage == "ENTIRE_REVISION" and not sig.covers_whole_document
    assert not sig.modifications_allowed


def test_a_revoked_registry_document_carries_its_reason_and_masks_the_subject() -> None:
    document = registry_pb2.Document(
        document_id="DOC-1",
        sha256=b"\x01" * 32,
        issuer=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value="0994000000013"
        ),
        subject=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value="1101700230708"
        ),
        document_type="birth-certificate",
        status=registry_pb2.DOCUMENT_STATUS_REVOKED,
        metadata={"issuer_name_th": "สำนักทะเบียนกลาง", "title": "สูติบัตร"},
        history=[
            registry_pb2.StatusChange(status=registry_pb2.DOCUMENT_STATUS_REGISTERED),
            registry_pb2.StatusChange(
                status=registry_pb2.DOCUMENT_STATUS_REVOKED,
                reason=registry_pb2.REVOCATION_REASON_FRAUD,
                reason_text="ได้มาโดยทุจริต",
                changed_at=ts(NOW),
            ),
        ],
    )
    entry = peers._entry(document)
    assert entry.status is RegistryStatus.REVOKED
    assert entry.revocation_reason == "ได้มาโดยทุจริต"
    assert entry.revocation_reason_code == "FRAUD"
    assert entry.revoked_at == NOW
    assert entry.issuer == "สำนักทะเบียนกลาง (TH-JUR 0994000000013)"
    assert entry.subject_reference == "TH-PID 1-1017-xxxxx-xx-8"
    assert entry.title == "สูติบัตร"
    assert entry.sha256_hex == "01" * 32


def test_one_issuers_revocation_is_not_hidden_by_another_issuers_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = RegistryWithEntries(
        registry_pb2.DOCUMENT_STATUS_REGISTERED,
        registry_pb2.DOCUMENT_STATUS_REVOKED,
        proofs_verify=False,
    )
    monkeypatch.setattr(peers, "RegistryClient", lambda *a, **k: registry)
    with grpc.insecure_channel("localhost:1") as unused:
        services = peers.GrpcTrustServices(unused, unused, timeout=1.0)
        finding = services._registry_for_hash(b"\x00" * 32)
    assert finding.status is RegistryStatus.REVOKED
    assert finding.entry is not None and finding.entry.document_id == "DOC-1"


class FakeRpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as a client sees it, without rich error details."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def test_an_unreachable_signing_service_is_unavailable_not_a_bad_document() -> None:
    assert isinstance(
        peers._signing_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE)), PeerUnavailable
    )
    assert isinstance(
        peers._signing_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)), PeerUnavailable
    )


def test_an_invalid_argument_from_signing_is_a_rejected_document() -> None:
    error = peers._signing_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad xref"))
    assert isinstance(error, DocumentRejected)
    assert error.reason is RejectionReason.BROKEN_PDF


def test_verify_requests_send_options_first_then_chunks_of_at_most_one_mib() -> None:
    pdf = b"%PDF" + b"x" * (peers.CHUNK_BYTES + 10)
    messages = list(peers._verify_requests(pdf, "en"))
    assert messages[0].WhichOneof("part") == "options"
    assert messages[0].options.include_etsi_xml and messages[0].options.language == "en"
    chunks = [m.chunk for m in messages[1:]]
    assert b"".join(chunks) == pdf and max(map(len, chunks)) <= peers.CHUNK_BYTES


# ---- i18n ---------------------------------------------------------------------------------------


def test_thai_dates_use_the_buddhist_era_and_bangkok_time() -> None:
    late_evening_utc = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)  # already 2027 in Bangkok
    assert Translator("th").date(late_evening_utc) == "1 มกราคม 2570"
    assert Translator("en").date(late_evening_utc) == "1 January 2027"
    assert Translator("th").datetime(late_evening_utc) == (
        "1 มกราคม 2570 เวลา 01:30:00 น. (เวลาประเทศไทย)"
    )


def test_a_certificate_that_never_expires_is_shown_in_bangkok_time() -> None:
    # RFC 5280 99991231235959Z: already the year 10000 (B.E. 10543) in Bangkok
    never = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert Translator("th").datetime(never) == (
        "1 มกราคม 10543 เวลา 06:59:59 น. (เวลาประเทศไทย)"
    )


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1)))
def test_the_thai_year_is_always_543_more_than_the_english_one(moment: datetime) -> None:
    th_year = int(Translator("th").date(moment).rsplit(" ", 1)[1])
    en_year = int(Translator("en").date(moment).rsplit(" ", 1)[1])
    assert th_year == en_year + 543


def test_reasons_are_explained_in_both_languages_and_unknown_codes_fall_back() -> None:
    assert Translator("th").reason("SUB_INDICATION_HASH_FAILURE").startswith("เนื้อหาเอกสาร")
    assert "changed after signing" in Translator("en").reason("HASH_FAILURE")
    assert Translator("en").reason("SOMETHING_NEW", "fallback text") == "fallback text"


# ---- sealing ------------------------------------------------------------------------------------

KEY = b"s" * 32


def test_a_sealed_report_round_trips_exactly() -> None:
    original = report(Verdict.INVALID, registry=registered(RegistryStatus.REVOKED, revoked_at=NOW))
    token = seal_report(original, KEY, now=NOW, ttl=timedelta(hours=1))
    assert open_report(token, KEY, now=NOW) == original


def test_an_expired_or_foreign_seal_is_refused() -> None:
    token = seal_report(report(), KEY, now=NOW, ttl=timedelta(minutes=5))
    with pytest.raises(SealBroken):
        open_report(token, KEY, now=NOW + timedelta(minutes=6))
    with pytest.raises(SealBroken):
        open_report(token, b"o" * 32, now=NOW)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_changed_byte_breaks_the_seal(position: int, value: int) -> None:
    token = seal_report(report(), KEY, now=NOW, ttl=timedelta(hours=1))
    index = position % len(token)
    replacement = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[value % 65]
    forged = token[:index] + replacement + token[index + 1 :]
    if forged == token:
        return
    try:
        opened = open_report(forged, KEY, now=NOW)
    except SealBroken:
        return
    # base64 padding bits can change without changing the bytes: then nothing changed
    assert opened == open_report(token, KEY, now=NOW)


# ---- upload reading ----------------------------------------------------------------------------


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _read(content_type: str, *parts: bytes, limit: int = 100, length: str | None = None):  # type: ignore[no-untyped-def]
    return asyncio.run(read_upload(content_type, length, _chunks(*parts), max_file_bytes=limit))


def _form(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def test_a_form_upload_yields_the_file_and_small_fields() -> None:
    body = _form("XyZ", ("lang", None, b"en"), ("file", "C:\\docs\\cert.pdf", b"%PDF-1.7 abc"))
    upload = _read("multipart/form-data; boundary=XyZ", body[:7], body[7:30], body[30:])
    assert upload.content == b"%PDF-1.7 abc"
    assert upload.file_name == "cert.pdf"
    assert upload.fields == {"lang": "en"}


def test_a_form_file_one_byte_over_the_limit_is_too_large() -> None:
    body = _form("b", ("file", "x.pdf", b"%PDF-" + b"0" * 96))
    with pytest.raises(UploadRefused) as refused:
        _read("multipart/form-data; boundary=b", body, limit=100)
    assert refused.value.problem is UploadProblem.TOO_LARGE
    exactly = _form("b", ("file", "x.pdf", b"%PDF-" + b"0" * 95))
    assert len(_read("multipart/form-data; boundary=b", exactly, limit=100).content) == 100


def test_a_pdf_header_late_in_the_file_is_not_a_pdf() -> None:
    with pytest.raises(UploadRefused) as refused:
        _read("application/pdf", b"x" * 2000 + b"%PDF-1.7", limit=10_000)
    assert refused.value.problem is UploadProblem.NOT_PDF


def test_a_malformed_multipart_body_is_a_bad_request() -> None:
    with pytest.raises(UploadRefused) as refused:
        _read("multipart/form-data; boundary=b", b"--b\r\nno headers end", limit=100)
    assert refused.value.problem in (UploadProblem.BAD_REQUEST, UploadProblem.NO_FILE)


# ---- PDF summary -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["th", "en"])
def test_the_summary_is_one_page_with_the_verdict_and_the_signer(language: str) -> None:
    pdf = render_summary(report(), Translator(language), FONTS)
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdfinfo, pdftotext) not installed")
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    assert re.search(rb"Pages:\s+1\n", info)
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert SIGNER_TH in text
    assert ("ถูกต้อง" if language == "th" else "Valid") in text
    assert ("2569" if language == "th" else "2026") in text


def test_a_summary_with_many_signatures_still_fits_one_page() -> None:
    many = report(signatures=tuple(signature(field_name=f"Sig{i}") for i in range(12)))
    pdf = render_summary(many, Translator("th"), FONTS)
    if shutil.which("pdfinfo") is None:
        pytest.skip("poppler-utils not installed")
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    assert re.search(rb"Pages:\s+1\n", info)


def test_lta_updates_after_a_document_time_stamp_are_allowed_and_issuers_read_short() -> None:
    response = verify_response(
        kind=signing_pb2.SIGNATURE_KIND_DOCUMENT_TIMESTAMP,
        modification_level=signing_pb2.MODIFICATION_LEVEL_LTA_UPDATES,
        docmdp_ok=False,
    )
    response.report.signatures[
        0
    ].signer.issuer = "Common Name: EGov Root CA, Organization: EGov Trust Services, Country: TH"
    sig = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    ).signatures[0]
    assert sig.is_document_timestamp
    assert sig.modifications_allowed
    assert sig.certificate_issuer == "EGov Root CA"


@given(
    content=st.binary(min_size=0, max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_the_file_is_read_the_same_however_the_body_is_chunked(
    content: bytes, cuts: list[int]
) -> None:
    pdf = b"%PDF-1.7\n" + content
    body = _form("bNd", ("lang", None, b"th"), ("file", "a.pdf", pdf))
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    upload = _read("multipart/form-data; boundary=bNd", *chunks, limit=10_000)
    assert upload.content == pdf
    assert upload.fields == {"lang": "th"}


# ---- settings ----------------------------------------------------------------------------------


def test_settings_name_the_variable_that_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    from egov_common.settings import SettingsError, load_settings
    from egov_verify_portal.settings import VerifyPortalSettings

    monkeypatch.setenv("EGOV_SIGNING_ADDRESS", "signing:50054")
    settings = load_settings(VerifyPortalSettings, "VERIFY_PORTAL")
    assert settings.http_listen == "127.0.0.1:8080"
    assert settings.signing_address == "signing:50054"
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    monkeypatch.setenv("EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY", "not-hex")
    with pytest.raises(SettingsError) as bad:
        load_settings(VerifyPortalSettings, "VERIFY_PORTAL")
    assert bad.value.variable == "EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY"


class RegistryAnsweringAnotherQuestion:
    """A registry whose answers the client refuses (about another digest or document)."""

    def lookup_by_hash(self, sha256: bytes) -> list[registry_pb2.Document]:
        raise LogVerificationError("the registry answered with a document of another digest")

    def get_document(self, document_id: str) -> registry_pb2.Document:
        raise LogVerificationError("the registry answered with another document")


def test_a_registry_answer_about_another_document_shows_nothing_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peers, "RegistryClient", lambda *a, **k: RegistryAnsweringAnotherQuestion())
    with grpc.insecure_channel("localhost:1") as unused:
        services = peers.GrpcTrustServices(unused, unused, timeout=1.0)
        by_hash = services._registry_for_hash(b"\x00" * 32)
        by_id = services.registry_entry("DOC-2")
    for finding in (by_hash, by_id):
        assert finding.entry is None
        assert finding.status is RegistryStatus.UNAVAILABLE  # a verdict of VALID is not reached
        assert finding.proof is ProofCheck.FAILED
        assert "another" in finding.proof_detail


# ---- long texts from certificates and the registry --------------------------------------------


class ShapingMeter:
    """Counts the characters HarfBuzz shapes, and stops a run that shapes too many."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.characters = 0
        self._shape = uharfbuzz.shape

    def __call__(self, font: object, buffer: uharfbuzz.Buffer, *args: object) -> None:
        self.characters += len(buffer)
        if self.characters > self.budget:
            raise AssertionError(f"shaped more than {self.budget} characters")
        self._shape(font, buffer, *args)


@pytest.mark.parametrize("text", ["A" * 3000, "ก่" * 1500, ("word " * 600).strip()])
def test_long_text_is_wrapped_in_time_proportional_to_its_length(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    meter = ShapingMeter(budget=3 * len(text))
    monkeypatch.setattr(uharfbuzz, "shape", meter)
    writer = PdfFileWriter(stream_xrefs=False)
    page = _Page(writer, FONTS)
    try:
        page.footer = True  # draw every line, as the footer does
        page.wrapped(text, size=9.5, x=MARGIN + 170)
    finally:
        page.close()
    # measured once, then each line shaped once to be drawn
    assert meter.characters <= 2 * len(text)


@given(
    words=st.lists(st.text(alphabet="AWi ก่้ำ", min_size=0, max_size=40), max_size=30),
    limit=st.floats(min_value=5.0, max_value=400.0),
)
def test_lines_fit_the_width_and_keep_every_character(words: list[str], limit: float) -> None:
    text = " ".join(words)
    widths = [0.0 if unicodedata.category(c).startswith("M") else 7.0 for c in text]
    lines = break_lines(text, widths, limit)
    # only spaces are dropped, where a line was broken
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    position = 0
    for line in lines:
        start = text.index(line, position)
        assert text[position:start].strip(" ") == ""
        position = start + len(line)
        width = sum(widths[start:position])
        one_letter = sum(1 for c in line if not unicodedata.category(c).startswith("M")) <= 1
        assert width <= limit or one_letter
        # a line never starts with a vowel or tone mark torn from its letter
        if line and unicodedata.category(line[0]).startswith("M"):
            assert start == 0 or text[start - 1] == " "


def test_certificate_and_registry_texts_are_cut_to_a_bounded_length() -> None:
    long_name = "สมชาย" + "ก" * 3000
    response = verify_response()
    signer = response.report.signatures[0].signer
    signer.name, signer.organization, signer.issuer = long_name, "O" * 3000, "I" * 3000
    response.report.signatures[0].reason = "R" * 3000
    response.report.problems.append("P" * 3000)
    document = registry_pb2.Document(
        document_id="DOC-1",
        document_type="T" * 3000,
        status=registry_pb2.DOCUMENT_STATUS_SUPERSEDED,
        superseded_by="../../report.pdf",
        metadata={"title": "ท" * 3000, "issuer_name": "N" * 3000},
    )
    entry = peers._entry(document)
    sig = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.SUPERSEDED, entry), NOW
    ).signatures[0]
    for shown in (
        sig.signer_name,
        sig.signer_organisation,
        sig.certificate_issuer,
        sig.reason,
        entry.title,
        entry.document_type,
        entry.issuer,
    ):
        assert len(shown) <= MAX_SHOWN_CHARS and shown.endswith("…")
    assert sig.signer_name.startswith("สมชาย")
    assert entry.superseded_by == ""  # a link the registry wrote must be a document id


def test_the_page_and_the_summary_show_the_same_cut_name(
    client: TestClient, services: FakeTrustServices
) -> None:
    response = verify_response()
    response.report.signatures[0].signer.name = "Somchai " + "A" * 3000
    services.next_report = peers._report(
        response, "a.pdf", b"%PDF", RegistryFinding(RegistryStatus.NOT_REGISTERED), NOW
    )
    page = client.post(
        "/verify?lang=en", files={"file": ("a.pdf", MINIMAL_PDF, "application/pdf")}
    )
    cut = services.next_report.signatures[0].signer_name
    assert cut in page.text and "A" * MAX_SHOWN_CHARS not in page.text
    token = re.search(r'name="report" value="([^"]+)"', page.text)
    assert token
    pdf = client.post("/report.pdf", data={"report": token.group(1), "lang": "en"}).content
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    shown = re.sub(r"\s+", "", text.stdout.decode())
    assert cut.replace(" ", "") in shown and "A" * MAX_SHOWN_CHARS not in shown


def test_a_cut_never_tears_a_thai_mark_from_its_letter() -> None:
    text = "ก" * 198 + "ก่" + "ข" * 10
    cut = clipped(text)
    assert len(cut) <= MAX_SHOWN_CHARS and cut.endswith("…")
    assert not unicodedata.category(cut[-2]).startswith("M") or cut[-3] == "ก"
    assert clipped("short") == "short"


# ---- the comparison in the seal, one file per form --------------------------------------------


def test_the_sealed_report_carries_the_document_it_was_compared_with() -> None:
    compared = dataclasses.replace(
        report(registry=registered()), expected_document_id="DOC-01JD8W3K5Q7R9T2V4X6Z8B0C2N"
    )
    opened = open_report(seal_report(compared, KEY, now=NOW, ttl=timedelta(hours=1)), KEY, now=NOW)
    assert opened.expected_document_id == compared.expected_document_id
    assert opened.matches_expected is False
    assert opened.verdict is Verdict.INVALID


def test_a_second_file_part_is_a_bad_request() -> None:
    for second_name in ("a.pdf", "b.pdf"):
        body = _form(
            "b",
            ("file", "a.pdf", b"%PDF-1.7 first"),
            ("file", second_name, b"EXTRA-BYTES-APPENDED"),
        )
        with pytest.raises(UploadRefused) as refused:
            _read("multipart/form-data; boundary=b", body, limit=1000)
        assert refused.value.problem is UploadProblem.BAD_REQUEST
