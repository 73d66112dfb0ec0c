"""Documents built to mislead the verifier or to exhaust it: each is refused, fails or stays
undecided with a reason, within bounded work and the verification deadline (DESIGN.md,
"Verification fails closed"). Every hostile PDF is made here, small, from a genuine signature."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable

import pytest
from asn1crypto import cms
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.errors import DeadlineExceeded, InvalidArgument
from egov_signing.domain import pdf_input
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.report import Indication, SignatureReport, document_verdict
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import pdf_embedded
from pyhanko_certvalidator.registry import SimpleCertificateStore
from signing_testkit import NOW, SigningPki, SoftwareKeys, _cert, _name, make_pdf

# -- building blocks ---------------------------------------------------------------------------


def _signed(pki: SigningPki, keys: SoftwareKeys, level: Level = Level.B_LT) -> bytes:
    """A genuine approval signature on a two-page document (B-LT: revocation data included)."""
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    return service.sign(make_pdf(pages=2), SignOptions("cred-1", level)).pdf


def _verify(
    pki: SigningPki,
    pdf: bytes,
    *,
    limits: DocumentLimits | None = None,
    anchors: list[bytes] | None = None,
    mode: RevocationMode = RevocationMode.HARD_FAIL,
):  # type: ignore[no-untyped-def]
    verifier = DocumentVerifier(
        TrustAnchors(anchors or [pki.root_pem]), limits=limits, revocation_mode=mode
    )
    return verifier.verify(pdf)


def _updated(pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _time_stamped(
    pki: SigningPki, pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None] | None = None
) -> bytes:
    """``pdf`` with a document time-stamp (and ``change`` made in the time-stamp's revision)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if change is not None:
        change(writer)
    out = io.BytesIO()
    signers.PdfTimeStamper(pki.timestamper()).timestamp_pdf(
        writer, "sha256", validation_context=pki.validation_context(), output=out
    )
    return out.getvalue()


def _overlay_field(writer: IncrementalPdfFileWriter) -> None:
    """A new empty signature field whose widget covers page 1 with other text: pyHanko calls it
    form filling, which an approval signature allows; what a reader sees is not what was signed.
    """
    page_ref, _ = writer.find_page_for_modification(0)
    font = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type1"),
                pdf_name("/BaseFont"): pdf_name("/Helvetica"),
            }
        )
    )
    box = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)])
    appearance = writer.add_object(
        generic.StreamObject(
            generic.DictionaryObject(
                {
                    pdf_name("/Type"): pdf_name("/XObject"),
                    pdf_name("/Subtype"): pdf_name("/Form"),
                    pdf_name("/BBox"): box,
                    pdf_name("/Resources"): generic.DictionaryObject(
                        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})}
                    ),
                }
            ),
            stream_data=b"1 1 1 rg 0 0 595 842 re f 0 0 0 rg "
            b"BT /F1 24 Tf 72 720 Td (PAY 1000000 THB TO MALLORY) Tj ET",
        )
    )
    widget = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/FT"): pdf_name("/Sig"),
                pdf_name("/T"): generic.TextStringObject("Approval2"),
                pdf_name("/F"): generic.NumberObject(4),
                pdf_name("/Rect"): box,
                pdf_name("/P"): page_ref,
                pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
            }
        )
    )
    page = page_ref.get_object()
    # the page's widgets so far (the signature's) stay: only one is added
    page[pdf_name("/Annots")] = generic.ArrayObject([*page.get("/Annots", ()), widget])
    writer.update_container(page)
    form = writer.root["/AcroForm"]
    form["/Fields"].append(widget)
    writer.update_container(form)


def _raw_update(
    pdf: bytes,
    objects: list[bytes],
    *,
    bogus_offsets: tuple[int, ...] = (),
    eof: bool = True,
) -> bytes:
    """An incremental update written by hand: ``objects`` numbered from the trailer's /Size,
    then ``bogus_offsets`` more numbers whose xref entries point at byte 5 of the file (objects
    no reader can read); with ``eof=False`` the update has no final %%EOF line."""
    reader = PdfFileReader(io.BytesIO(pdf))
    size = int(reader.trailer_view["/Size"])
    root = reader.trailer_view.raw_get("/Root")
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    out = bytearray(pdf)
    entries = []
    for number, body in enumerate(objects, start=size):
        entries.append((number, len(out)))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    entries += [(size + len(objects) + i, 5) for i in range(len(bogus_offsets))]
    xref = len(out)
    out += b"xref\n"
    for number, offset in entries:
        out += b"%d 1\n%010d 00000 n \n" % (number, offset)
    out += b"trailer\n<< /Size %d /Root %d %d R /Prev %d >>\nstartxref\n%d\n" % (
        size + len(entries),
        root.idnum,
        root.generation,
        prev,
        xref,
    )
    if eof:
        out += b"%%EOF\n"
    return bytes(out)


def _with_signature_dictionary(pdf: bytes, entries: dict[str, generic.PdfObject]) -> bytes:
    """``pdf`` with a new signature field whose value is the hand-made dictionary ``entries``."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        fields.append_signature_field(writer, fields.SigFieldSpec("Forged"))
        value = writer.add_object(
            generic.DictionaryObject({pdf_name(k): v for k, v in entries.items()})
        )
        for field_ref in writer.root["/AcroForm"]["/Fields"]:
            field = field_ref.get_object()
            if field.get("/T") == "Forged":
                field[pdf_name("/V")] = value
                writer.update_container(field)

    return _updated(pdf, change)


def _cms_of(pdf: bytes) -> bytes:
    return bytes(PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _key_info(key: ec.EllipticCurvePrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _signed_with(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]
) -> bytes:
    """A PAdES B-B signature by pyHanko itself, carrying ``chain`` in its CMS."""
    signer = signers.SimpleSigner(
        signing_cert=_asn1(cert),
        signing_key=_key_info(key),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in chain]),
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
    )
    return out.getvalue()


def _deadline_after(monkeypatch: pytest.MonkeyPatch, checks: int) -> None:
    """The verification deadline passes at its ``checks``-th check (no clock involved)."""
    seen = {"n": 0}

    def check(self: pdf_input.Deadline) -> None:
        seen["n"] += 1
        if seen["n"] >= checks:
            raise DeadlineExceeded(
                pdf_input.VERIFICATION_DEADLINE_EXCEEDED, "the document took too long to process"
            )

    monkeypatch.setattr(pdf_input.Deadline, "check", check)


# -- 1. a document time-stamp does not approve changes made after the last signature ------------


@pytest.mark.parametrize("in_the_stamps_revision", [False, True], ids=["before", "within"])
def test_a_document_time_stamp_does_not_launder_changes_after_the_last_signature(
    pki: SigningPki, keys: SoftwareKeys, in_the_stamps_revision: bool
) -> None:
    signed = _signed(pki, keys)
    if in_the_stamps_revision:
        laundered = _time_stamped(pki, signed, _overlay_field)
    else:
        overlaid = _updated(signed, _overlay_field)
        # without a time-stamp the change is content no signature covers
        assert document_verdict(_verify(pki, overlaid)).indication is Indication.INDETERMINATE
        laundered = _time_stamped(pki, overlaid)
    report = _verify(pki, laundered)
    signature, stamp = report.signatures
    assert signature.modification_level == "FORM_FILLING"
    assert stamp.indication is Indication.TOTAL_PASSED  # the stamp itself is fine
    verdict = document_verdict(report)
    assert (verdict.indication, verdict.sub_indication) == (Indication.INDETERMINATE, None)
    assert verdict.unsigned_content_after_last_signature
    assert verdict.reason == (
        "content was appended after the last signature and no signature covers it"
    )


# -- 2. an incremental update without %%EOF, invisible to pyHanko, rendered by others -----------


def _update_without_eof(pdf: bytes) -> bytes:
    """A new page 1 content stream appended as an update with no final %%EOF line: pyHanko
    reads the file up to the signed revision's %%EOF, poppler renders the update."""
    reader = PdfFileReader(io.BytesIO(pdf))
    page_ref = reader.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    font = page["/Resources"]["/Font"].raw_get("/F1")
    size = int(reader.trailer_view["/Size"])
    content = b"BT /F1 24 Tf 72 720 Td (PAY 1000000 THB TO MALLORY) Tj ET"
    replacement = (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
        % (page.raw_get("/Parent").idnum, font.idnum, size)
    )
    out = bytearray(pdf)
    stream_at = len(out)
    out += b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        size,
        len(content),
        content,
    )
    page_at = len(out)
    out += b"%d 0 obj\n%s\nendobj\n" % (page_ref.idnum, replacement)
    xref = len(out)
    root = reader.trailer_view.raw_get("/Root")
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    out += b"xref\n%d 1\n%010d 00000 n \n%d 1\n%010d 00000 n \n" % (
        page_ref.idnum,
        page_at,
        size,
        stream_at,
    )
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n" % (
        size + 1,
        root.idnum,
        prev,
        xref,
    )
    return bytes(out)


def test_an_update_the_reader_cannot_see_keeps_the_document_from_passing(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    signed = _signed(pki, keys)
    hidden = _update_without_eof(signed)
    report = _verify(pki, hidden)
    verdict = document_verdict(report)
    assert (verdict.indication, verdict.sub_indication) == (
        Indication.INDETERMINATE,
        None,
    )
    assert verdict.unsigned_content_after_last_signature
    assert f"{len(hidden) - len(signed)} bytes after the end of its last revision" in (
        verdict.reason
    )
    # what pyHanko read: the revisions up to the signed one's %%EOF, nothing after it
    assert report.revisions == PdfFileReader(io.BytesIO(signed)).xrefs.total_revisions
    assert report.bytes_after_last_revision == len(hidden) - len(signed)


def test_line_ends_after_the_last_eof_marker_are_no_hidden_content(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    report = _verify(pki, _signed(pki, keys) + b"\r\n\n  \x00")
    assert document_verdict(report).indication is Indication.TOTAL_PASSED
    assert report.bytes_after_last_revision == 0


# -- 3. a malformed adbe-revocationInfoArchival signed attribute -------------------------------


def _with_archival(pdf: bytes, value: bytes) -> bytes:
    """``pdf`` whose CMS gains an adbe-revocationInfoArchival signed attribute with ``value``
    (ISO 32000-1 12.8.3.3), written back in place of the original (its signature value no
    longer verifies: a verdict, never a crash, is what matters)."""
    info = cms.ContentInfo.load(_cms_of(pdf))
    signer_info = info["content"]["signer_infos"][0]
    oid = bytes.fromhex("06092A864886F72F010108")  # 1.2.840.113583.1.1.8
    attribute = _tlv(0x30, oid + _tlv(0x31, value))
    attrs = b"".join(a.dump() for a in signer_info["signed_attrs"]) + attribute
    signer_info["signed_attrs"] = cms.CMSAttributes.load(_tlv(0x31, attrs))
    info["content"]["signer_infos"] = cms.SignerInfos([signer_info])
    new = cms.ContentInfo({"content_type": "signed_data", "content": info["content"]}).dump()
    start = pdf.index(b"/Contents <") + len(b"/Contents <")
    end = pdf.index(b">", start)
    hex_value = new.hex().encode()
    assert len(hex_value) <= end - start
    return pdf[:start] + hex_value.ljust(end - start, b"0") + pdf[end:]


@pytest.mark.parametrize(
    "value",
    [
        _tlv(0x30, _tlv(0xA0, _tlv(0x30, b"\x30\x00"))),  # a CRL that is an empty SEQUENCE
        _tlv(0x30, _tlv(0xA0, _tlv(0x30, b"\x30\x05\x30\x03\x02\x01\x01"))),  # truncated CRL
        _tlv(0x30, _tlv(0xA1, _tlv(0x30, b"\x30\x03\x0a\x01\x00"))),  # OCSP without a body
    ],
    ids=["crl-empty", "crl-truncated", "ocsp-no-response-bytes"],
)
def test_malformed_archived_revocation_data_is_a_format_failure(
    pki: SigningPki, keys: SoftwareKeys, value: bytes
) -> None:
    report = _verify(pki, _with_archival(_signed(pki, keys, Level.B_B), value))
    (signature,) = report.signatures
    assert (signature.indication, signature.sub_indication) == (
        Indication.TOTAL_FAILED,
        "FORMAT_FAILURE",
    )
    assert "adbe-revocationInfoArchival" in signature.reasons[0]


# -- 4. a /ByteRange that is not the standard [0 a b c] ----------------------------------------


def _forged_byte_range(pki: SigningPki, keys: SoftwareKeys, byte_range: list[int]) -> bytes:
    signed = _signed(pki, keys, Level.B_B)
    return _with_signature_dictionary(
        signed,
        {
            "/Type": pdf_name("/Sig"),
            "/Filter": pdf_name("/Adobe.PPKLite"),
            "/SubFilter": pdf_name("/ETSI.CAdES.detached"),
            "/ByteRange": generic.ArrayObject([generic.NumberObject(v) for v in byte_range]),
            "/Contents": generic.ByteStringObject(_cms_of(signed)),
        },
    )


@pytest.mark.parametrize(
    ("byte_range", "problem"),
    [
        ([0, 10**9] * 1000, "it has 2000 numbers, not 4"),
        ([5, 100, 200, 100], "it does not start at byte 0"),
        ([0, 100, 200, 10**9], "it goes past the end of the file"),
        ([0, 100, 90, 10], "its second range starts before the end of the first"),
        ([0, 100, 200, 10], "the gap between its ranges is not the signature's /Contents"),
    ],
    ids=["many-pairs", "not-from-0", "past-the-end", "overlapping", "gap-not-contents"],
)
def test_a_byte_range_not_of_the_standard_form_is_refused_before_hashing(
    pki: SigningPki,
    keys: SoftwareKeys,
    monkeypatch: pytest.MonkeyPatch,
    byte_range: list[int],
    problem: str,
) -> None:
    pdf = _forged_byte_range(pki, keys, byte_range)
    digests = []
    original = pdf_embedded.byte_range_digest
    monkeypatch.setattr(
        pdf_embedded,
        "byte_range_digest",
        lambda *a, **kw: digests.append(1) or original(*a, **kw),
    )
    report = _verify(pki, pdf)
    forged = next(s for s in report.signatures if s.field_name == "Forged")
    assert (forged.indication, forged.sub_indication) == (
        Indication.TOTAL_FAILED,
        "FORMAT_FAILURE",
    )
    assert forged.reasons[0].startswith("the /ByteRange is not of the standard form [0 a b c]")
    assert problem in forged.reasons[0]
    assert len(digests) == 1  # the genuine signature's only


# -- 5. many revisions after the signature ------------------------------------------------------


def _with_revisions(pdf: bytes, count: int) -> bytes:
    for i in range(count):
        pdf = _raw_update(pdf, [b"%d" % i])
    return pdf


def test_a_document_with_more_revisions_than_allowed_is_refused(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _with_revisions(_signed(pki, keys, Level.B_B), 12)
    with pytest.raises(InvalidArgument) as err:
        _verify(pki, pdf, limits=DocumentLimits(max_revisions=10))
    assert err.value.reason == "PDF_TOO_MANY_REVISIONS"
    assert err.value.metadata == {"max_revisions": "10"}


def test_the_deadline_is_checked_while_later_revisions_are_compared(
    pki: SigningPki, keys: SoftwareKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _with_revisions(_signed(pki, keys, Level.B_B), 40)
    _deadline_after(monkeypatch, 20)
    with pytest.raises(DeadlineExceeded) as err:
        _verify(pki, pdf, mode=RevocationMode.SOFT_FAIL)
    assert err.value.reason == "VERIFICATION_DEADLINE_EXCEEDED"


# -- 6. certificates that multiply the candidate paths ------------------------------------------


def _path_explosion(pki: SigningPki, per_level: int, levels: int) -> bytes:
    """``levels`` levels of ``per_level`` same-named CA certificates (no key identifiers), the
    top level naming the trust anchor as issuer but signed by an unrelated key: per_level **
    levels candidate paths, none valid."""
    evil = ec.generate_private_key(ec.SECP256R1())

    def ca(
        subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(evil, hashes.SHA256())
        )

    chain = []
    for level in range(levels):
        issuer = pki.root.subject if level == levels - 1 else _name(f"Level {level + 1}")
        for _ in range(per_level):
            chain.append(
                ca(_name(f"Level {level}"), ec.generate_private_key(ec.SECP256R1()), issuer)
            )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(_name("Alice"), key, _name("Level 0"), evil, ca=False)
    return _signed_with(leaf, key, chain)


def test_too_many_candidate_paths_stop_the_path_search_with_a_reason(pki: SigningPki) -> None:
    report = _verify(pki, _path_explosion(pki, 3, 3), limits=DocumentLimits(max_path_candidates=10))
    (signature,) = report.signatures
    assert (signature.indication, signature.sub_indication) == (
        Indication.INDETERMINATE,
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    )
    assert signature.reasons[0] == (
        "the certificate path search stopped after 10 candidate issuer certificates:"
        " the certificates the signature and the document carry allow too many paths"
    )


def test_the_path_search_respects_the_verification_deadline(
    pki: SigningPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _path_explosion(pki, 3, 3)
    _deadline_after(monkeypatch, 6)
    with pytest.raises(DeadlineExceeded):
        _verify(pki, pdf)


# -- 7. an end-entity certificate trusted as an anchor issues nothing ---------------------------


def test_a_non_ca_trust_anchor_cannot_vouch_for_certificates_it_issued(pki: SigningPki) -> None:
    seal_key = ec.generate_private_key(ec.SECP256R1())
    seal_name = _name("Agency e-seal", "Agency")
    seal = _cert(seal_name, seal_key, seal_name, seal_key, ca=False)
    victim_key = ec.generate_private_key(ec.SECP256R1())
    victim = _cert(_name("Somchai (forged)"), victim_key, seal_name, seal_key, ca=False)
    seal_pem = seal.public_bytes(serialization.Encoding.PEM)

    report = _verify(pki, _signed_with(victim, victim_key, [seal]), anchors=[seal_pem])
    (signature,) = report.signatures
    assert (signature.indication, signature.sub_indication) == (
        Indication.INDETERMINATE,
        "CHAIN_CONSTRAINTS_FAILURE",
    )
    assert not signature.trusted
    assert signature.reasons[0] == (
        "the signer certificate was issued by the trust anchor 'Agency e-seal', which is not a"
        " CA certificate: a trust anchor that is not a CA vouches only for its own signatures"
        " (RFC 5280 4.2.1.9)"
    )
    # the e-seal's own signature is still trusted directly
    (own,) = _verify(pki, _signed_with(seal, seal_key, []), anchors=[seal_pem]).signatures
    assert own.indication is Indication.TOTAL_PASSED, own.reasons


# -- 8. signature dictionaries that no field uses ----------------------------------------------

_STRAY = b"<< /Type /Sig /SubFilter /ETSI.CAdES.detached /ByteRange [0 1 2 3] /Contents <00> >>"


def _stray_signatures(report) -> list[SignatureReport]:  # type: ignore[no-untyped-def]
    return [s for s in report.signatures if s.field_name.startswith("(no field)")]


def test_an_unreadable_object_does_not_hide_a_stray_signature_dictionary(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _raw_update(_signed(pki, keys), [_STRAY], bogus_offsets=(5,))
    report = _verify(pki, pdf)
    (stray,) = _stray_signatures(report)
    assert (stray.indication, stray.sub_indication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert document_verdict(report).indication is Indication.TOTAL_FAILED


def test_a_search_for_stray_signatures_cut_short_does_not_pass(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    pdf = _raw_update(_signed(pki, keys), [_STRAY])
    report = _verify(pki, pdf, limits=DocumentLimits(max_objects_scanned=5))
    assert _stray_signatures(report) == []
    assert report.signatures[0].indication is Indication.TOTAL_PASSED
    (incomplete,) = report.incomplete_checks
    assert incomplete.startswith(
        "the search for signature dictionaries that no field uses was not made: the file has"
    )
    assert incomplete.endswith("objects, more than 5")
    verdict = document_verdict(report)
    assert (verdict.indication, verdict.sub_indication) == (Indication.INDETERMINATE, None)
    assert verdict.reason.startswith(
        "a check could not be completed: the search for signature dictionaries that no field"
        " uses was not made"
    )
