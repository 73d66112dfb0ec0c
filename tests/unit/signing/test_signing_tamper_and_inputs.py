"""Tampered documents fail with the right indication; bad inputs are refused with a reason;
independent tools (pdfsig, qpdf) accept what we sign."""

from __future__ import annotations

import io
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from egov_common.errors import InvalidArgument
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.report import Indication, SignatureKind, document_verdict
from egov_signing.domain.report_formats import summary_text
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from signing_testkit import SigningPki, SoftwareKeys, make_pdf


def _sign(pki: SigningPki, keys: SoftwareKeys, level: Level = Level.B_LT) -> bytes:
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    return service.sign(make_pdf(pages=2), SignOptions("cred-1", level)).pdf


def _verify(pki: SigningPki, pdf: bytes, limits: DocumentLimits | None = None):  # type: ignore[no-untyped-def]
    return DocumentVerifier(TrustAnchors([pki.root_pem]), limits=limits).verify(pdf)


def _swap_page_content(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    page["/Contents"] = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 720 Td (Pay 1000000 THB) Tj ET")
    )
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_genuine_b_lt_document_passes(pki: SigningPki, keys: SoftwareKeys) -> None:
    report = _verify(pki, _sign(pki, keys))
    assert report.indication is Indication.TOTAL_PASSED
    assert report.bytes_after_last_signature == 0 or report.signatures[0].modification_level in (
        "LTA_UPDATES",
        "NONE",
    )


def test_flipped_byte_is_hash_failure(pki: SigningPki, keys: SoftwareKeys) -> None:
    pdf = bytearray(_sign(pki, keys, Level.B_B))
    at = pdf.index(b"Hello egov-trust")
    pdf[at] = ord("J")
    sig = _verify(pki, bytes(pdf)).signatures[0]
    assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")
    assert sig.intact is False


def test_page_swapped_after_signing_is_illegal_modification(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    tampered = _swap_page_content(_sign(pki, keys))
    report = _verify(pki, tampered)
    sig = report.signatures[0]
    assert (sig.indication, sig.sub_indication) == (
        Indication.TOTAL_FAILED,
        "ILLEGAL_MODIFICATIONS",
    )
    assert sig.modification_level == "OTHER"
    assert report.indication is Indication.TOTAL_FAILED
    assert report.unsigned_revisions_after_last_signature >= 1


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils absent")
def test_pdfsig_calls_the_swapped_page_valid_but_we_do_not(
    pki: SigningPki, keys: SoftwareKeys, tmp_path: Path
) -> None:
    path = tmp_path / "swapped.pdf"
    path.write_bytes(_swap_page_content(_sign(pki, keys, Level.B_B)))
    out = subprocess.run(["pdfsig", "-no-ocsp", str(path)], capture_output=True, text=True)
    assert "Signature is Valid" in out.stdout


@pytest.mark.skipif(
    shutil.which("pdfsig") is None or shutil.which("certutil") is None,
    reason="poppler-utils or libnss3-tools absent",
)
@pytest.mark.parametrize("level", [Level.B_B, Level.B_T, Level.B_LT])
def test_pdfsig_says_valid_and_trusted_with_root_in_nss_db(
    pki: SigningPki, keys: SoftwareKeys, tmp_path: Path, level: Level
) -> None:
    db = tmp_path / "nss"
    db.mkdir()
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root_pem)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "root", "-t", "CT,C,C", "-i", str(root)],
        check=True,
    )
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(_sign(pki, keys, level))
    # not -no-ocsp: with it poppler 22.12 reports "Unknown issue" for any chain; our test
    # certificates name no OCSP responder, so nothing is fetched
    out = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{db}", str(pdf)], capture_output=True, text=True
    )
    first = out.stdout.split("Signature #2")[0]
    assert "Signature is Valid" in first
    assert "Certificate is Trusted" in first


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf absent")
def test_qpdf_check_passes_on_signed_pdf(
    pki: SigningPki, keys: SoftwareKeys, tmp_path: Path
) -> None:
    path = tmp_path / "signed.pdf"
    path.write_bytes(_sign(pki, keys, Level.B_LTA))
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)


def _reason(pki: SigningPki, pdf: bytes, limits: DocumentLimits | None = None) -> str:
    with pytest.raises(InvalidArgument) as err:
        _verify(pki, pdf, limits)
    return err.value.reason


def test_non_pdf_is_refused(pki: SigningPki) -> None:
    assert _reason(pki, b"PK\x03\x04 this is a zip") == "NOT_A_PDF"


def test_truncated_pdf_is_malformed(pki: SigningPki, keys: SoftwareKeys) -> None:
    pdf = _sign(pki, keys, Level.B_B)
    assert _reason(pki, pdf[: len(pdf) // 2]) == "PDF_MALFORMED"


def test_too_large_pdf_is_refused(pki: SigningPki) -> None:
    assert _reason(pki, make_pdf(), DocumentLimits(max_bytes=100)) == "PDF_TOO_LARGE"


def test_too_many_pages_is_refused(pki: SigningPki) -> None:
    assert _reason(pki, make_pdf(pages=3), DocumentLimits(max_pages=2)) == "PDF_TOO_MANY_PAGES"


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf absent")
def test_encrypted_pdf_is_refused(pki: SigningPki, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.pdf", tmp_path / "enc.pdf"
    src.write_bytes(make_pdf())
    subprocess.run(
        ["qpdf", "--encrypt", "user", "owner", "256", "--", str(src), str(dst)], check=True
    )
    assert _reason(pki, dst.read_bytes()) == "PDF_ENCRYPTED"


def _bomb_pdf(decoded_size: int) -> bytes:
    """A PDF whose catalog lives in an object stream that inflates to ``decoded_size`` bytes."""
    header_objs = b"1 0 2 40 3 80 "
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    content = bytearray()
    for off, body in zip((0, 40, 80), bodies, strict=True):
        content += body.ljust(40 if off < 80 else len(body))
    data = header_objs.ljust(20) + bytes(content)
    first = 20
    data += b" " * (decoded_size - len(data))
    packed = zlib.compress(data, 9)
    out = bytearray(b"%PDF-1.7\n")
    objstm_off = len(out)
    out += (
        b"4 0 obj\n<< /Type /ObjStm /N 3 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (first, len(packed))
    )
    out += packed + b"\nendstream\nendobj\n"
    xref_off = len(out)
    rows = [b"\x00\x00\x00\x00\x00\xff\xff"]
    rows += [b"\x02" + (4).to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(3)]
    rows += [b"\x01" + objstm_off.to_bytes(4, "big") + b"\x00\x00"]
    rows += [b"\x01" + xref_off.to_bytes(4, "big") + b"\x00\x00"]
    xref_data = b"".join(rows)
    out += b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % len(
        xref_data
    )
    out += xref_data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_off
    return bytes(out)


def test_decompression_bomb_is_refused(pki: SigningPki) -> None:
    limits = DocumentLimits(max_decoded_bytes=1024 * 1024)
    assert _reason(pki, _bomb_pdf(8 * 1024 * 1024), limits) == "PDF_DECOMPRESSION_LIMIT"


def test_small_object_stream_pdf_is_accepted(pki: SigningPki) -> None:
    report = _verify(pki, _bomb_pdf(4096))
    assert report.signatures == ()


def test_verification_past_its_deadline_is_deadline_exceeded(pki: SigningPki) -> None:
    from egov_common.errors import DeadlineExceeded

    verifier = DocumentVerifier(TrustAnchors([pki.root_pem]))
    with pytest.raises(DeadlineExceeded) as err:
        verifier.verify(make_pdf(), deadline_seconds=-1)
    assert err.value.reason == "VERIFICATION_DEADLINE_EXCEEDED"


def test_signature_dictionary_without_a_field_is_reported_and_fails(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(_sign(pki, keys, Level.B_B)))
    writer.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Sig"),
                generic.NameObject("/SubFilter"): generic.NameObject("/ETSI.CAdES.detached"),
                generic.NameObject("/ByteRange"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 10, 20, 30)]
                ),
                generic.NameObject("/Contents"): generic.ByteStringObject(b"\x30\x00"),
            }
        )
    )
    out = io.BytesIO()
    writer.write(out)
    report = DocumentVerifier(
        TrustAnchors([pki.root_pem]), revocation_mode=RevocationMode.SOFT_FAIL
    ).verify(out.getvalue())
    hidden = [s for s in report.signatures if s.field_name.startswith("(no field)")]
    assert len(hidden) == 1
    assert (hidden[0].indication, hidden[0].sub_indication) == (
        Indication.TOTAL_FAILED,
        "FORMAT_FAILURE",
    )
    assert report.indication is Indication.TOTAL_FAILED


def test_a_document_time_stamp_without_a_signature_does_not_pass(pki: SigningPki) -> None:
    # anyone can have any PDF time-stamped: a time-stamp says when, never who issued it
    out = io.BytesIO()
    signers.PdfTimeStamper(pki.timestamper()).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf(text="Anything Mallory wants"))),
        "sha256",
        validation_context=pki.validation_context(),
        output=out,
    )
    report = DocumentVerifier(
        TrustAnchors([pki.root_pem]), revocation_mode=RevocationMode.SOFT_FAIL
    ).verify(out.getvalue())
    (stamp,) = report.signatures
    assert (stamp.kind, stamp.indication) == (
        SignatureKind.DOCUMENT_TIMESTAMP,
        Indication.TOTAL_PASSED,
    )
    verdict = document_verdict(report)
    assert (verdict.indication, verdict.sub_indication) == (
        Indication.INDETERMINATE,
        "NO_SIGNATURE",
    )
    assert "no signature" in verdict.reason
    assert "The document has no digital signature" in summary_text(report, "en", verdict)
