"""The validation report as ETSI TS 119 102-2 XML and as a short human summary (Thai/English)."""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from egov_common.thai_dates import format_date

from .report import (
    DocumentVerdict,
    Indication,
    SignatureKind,
    ValidationReport,
    document_verdict,
)

__all__ = ["ETSI_NS", "summary_html", "summary_text", "to_etsi_xml"]

#: ETSI TS 119 102-2 V1.2.1 namespace
ETSI_NS = "http://uri.etsi.org/19102/v1.2.1#"
_DS = "http://www.w3.org/2000/09/xmldsig#"
_TSL = "http://uri.etsi.org/02231/v2#"  # ETSI TS 119 612 (DigitalIdentityType)
_REASON_TYPE = "urn:egov:validation:reason"
_MAIN = {
    Indication.TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    Indication.TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
    Indication.INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
}
_SUB_PREFIX = "urn:etsi:019102:subindication:"
_VO_CERT = "urn:etsi:019102:validationObject:certificate"
_VO_SIGNED_DATA = "urn:etsi:019102:validationObject:signedData"
_POE_VALIDATION = "urn:etsi:019102:poetype:validation"
_POE_PROVIDED = "urn:etsi:019102:poetype:provided"


#: what XML 1.0 (2.2 Characters) cannot carry; ElementTree would write it and leave the
#: document ill-formed
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        # text from the PDF (field names, signer names in certificates, reasons) is untrusted
        node.text = _NOT_XML_CHAR.sub("\ufffd", text)
    return node


def _iso(when: datetime) -> str:
    """xs:dateTime in UTC; a time without zone (none should reach here) is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_etsi_xml(
    report: ValidationReport, *, validator_name: str = "egov-trust signing service"
) -> bytes:
    """ETSI TS 119 102-2 ValidationReport: one SignatureValidationReport per signature
    dictionary, signer certificates as validation objects. UTF-8 XML bytes."""
    ET.register_namespace("", ETSI_NS)
    ET.register_namespace("ds", _DS)
    ET.register_namespace("tsl", _TSL)
    e = "{" + ETSI_NS + "}"
    root = ET.Element(e + "ValidationReport")
    objects: list[tuple[str, str, bytes]] = []
    for n, sig in enumerate(report.signatures, start=1):
        svr = _el(root, e + "SignatureValidationReport")
        ident = _el(svr, e + "SignatureIdentifier", id=f"sig-{n}")
        if sig.signature_value_digest_sha256:
            dav = _el(ident, e + "DigestAlgAndValue")
            _el(
                dav,
                "{" + _DS + "}DigestMethod",
                Algorithm="http://www.w3.org/2001/04/xmlenc#sha256",
            )
            _el(
                dav,
                "{" + _DS + "}DigestValue",
                base64.b64encode(bytes.fromhex(sig.signature_value_digest_sha256)).decode(),
            )
        _el(ident, e + "HashOnly", "false")
        _el(ident, e + "DocHashOnly", "false")
        _el(ident, e + "DAIdentifier", sig.field_name)
        vti = _el(svr, e + "ValidationTimeInfo")
        _el(vti, e + "ValidationTime", _iso(report.validation_time))
        best = _el(vti, e + "BestSignatureTime")
        if sig.timestamp_trusted and sig.timestamp_time is not None:
            _el(best, e + "POETime", _iso(sig.timestamp_time))
            _el(best, e + "TypeOfProof", _POE_PROVIDED)
        else:
            _el(best, e + "POETime", _iso(report.validation_time))
            _el(best, e + "TypeOfProof", _POE_VALIDATION)
        attrs = _el(svr, e + "SignatureAttributes")
        if sig.claimed_signing_time is not None:
            st = _el(attrs, e + "SigningTime", Signed="true")
            _el(st, e + "Time", _iso(sig.claimed_signing_time))
        if sig.kind is SignatureKind.SIGNATURE and sig.timestamp_time is not None:
            ts = _el(attrs, e + "SignatureTimeStamp", Signed="false")
            _el(ts, e + "TimeStampValue", _iso(sig.timestamp_time))
        if sig.signer is not None:
            info = _el(svr, e + "SignerInformation")
            vo_id = f"vo-cert-{n}"
            _el(info, e + "SignerCertificate", VOReference=vo_id)
            _el(info, e + "Signer", sig.signer.common_name)
            if sig.signer_certificate_der:
                objects.append((vo_id, _VO_CERT, sig.signer_certificate_der))
        quality = _el(svr, e + "SignatureQuality")
        _el(
            quality,
            e + "SignatureQualityInformation",
            f"urn:egov:pades:level:{sig.pades_level.value}",
        )
        status = _el(svr, e + "SignatureValidationStatus")
        _el(status, e + "MainIndication", _MAIN[sig.indication])
        if sig.sub_indication:
            _el(status, e + "SubIndication", _SUB_PREFIX + sig.sub_indication)
        if sig.reasons:
            data = _el(status, e + "AssociatedValidationReportData")
            extra = _el(data, e + "AdditionalValidationReportData")
            for reason in sig.reasons:
                typed = _el(extra, e + "ReportData")
                _el(typed, e + "Type", _REASON_TYPE)
                _el(typed, e + "Value", reason)
    if objects:
        svo = _el(root, e + "SignatureValidationObjects")
        for vo_id, kind, der in objects:
            vo = _el(svo, e + "ValidationObject", id=vo_id)
            _el(vo, e + "ObjectType", kind)
            rep = _el(vo, e + "ValidationObjectRepresentation")
            _el(rep, e + "base64", base64.b64encode(der).decode())
    validator = _el(root, e + "SignatureValidator")
    digital_id = _el(validator, e + "DigitalId")
    _el(digital_id, "{" + _TSL + "}X509SubjectName", f"CN={validator_name}")
    # the document itself, so a reader can tie the report to the file
    docvo = ET.Element(e + "ValidationObject", id="vo-document")
    _el(docvo, e + "ObjectType", _VO_SIGNED_DATA)
    rep = _el(docvo, e + "ValidationObjectRepresentation")
    dav = _el(rep, e + "DigestAlgAndValue")
    _el(dav, "{" + _DS + "}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    _el(
        dav,
        "{" + _DS + "}DigestValue",
        base64.b64encode(bytes.fromhex(report.document_sha256)).decode(),
    )
    svo_node = root.find(e + "SignatureValidationObjects")
    if svo_node is None:
        svo_node = ET.Element(e + "SignatureValidationObjects")
        root.insert(len(report.signatures), svo_node)
    svo_node.append(docvo)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


_WORDS = {
    "th": {
        Indication.TOTAL_PASSED: "ผ่าน",
        Indication.TOTAL_FAILED: "ไม่ผ่าน",
        Indication.INDETERMINATE: "ยังสรุปไม่ได้",
        "document": "เอกสาร",
        "signature": "ลายมือชื่อ",
        "timestamp": "ตราประทับเวลา",
        "by": "โดย",
        "no_signature": "ไม่พบลายมือชื่อดิจิทัลในเอกสาร",
        "unsigned_after": "มีการแก้ไขต่อท้ายหลังลายมือชื่อสุดท้าย",
        "signed_on": "ลงนามเมื่อ",
    },
    "en": {
        Indication.TOTAL_PASSED: "PASSED",
        Indication.TOTAL_FAILED: "FAILED",
        Indication.INDETERMINATE: "INDETERMINATE",
        "document": "Document",
        "signature": "Signature",
        "timestamp": "Document time-stamp",
        "by": "by",
        "no_signature": "The document has no digital signature",
        "unsigned_after": "Content was appended after the last signature",
        "signed_on": "signed",
    },
}


def _lines(
    report: ValidationReport, language: str, verdict: DocumentVerdict | None
) -> Sequence[tuple[str, str]]:
    w = _WORDS["th" if language == "th" else "en"]
    verdict = verdict or document_verdict(report)
    out: list[tuple[str, str]] = []
    overall = verdict.indication
    out.append(
        (
            "h",
            f"{w['document']}: {w[overall]} ({overall.value}"
            + (f" / {verdict.sub_indication}" if verdict.sub_indication else "")
            + ")",
        )
    )
    if not report.has_signature:
        out.append(("p", str(w["no_signature"])))
    elif overall is not report.indication:
        out.append(("p", verdict.reason))
    if verdict.unsigned_content_after_last_signature:
        out.append(("p", f"{w['unsigned_after']} ({report.bytes_after_last_signature} bytes)"))
    for sig in report.signatures:
        label = w["timestamp"] if sig.kind is SignatureKind.DOCUMENT_TIMESTAMP else w["signature"]
        who = ""
        if sig.signer is not None:
            who = f" {w['by']} {sig.signer.common_name}"
            if sig.signer.organisation:
                who += f" ({sig.signer.organisation})"
        when = sig.timestamp_time if sig.timestamp_trusted else sig.claimed_signing_time
        when_text = f", {w['signed_on']} {format_date(when, language)}" if when else ""
        sig_verdict = f"{w[sig.indication]} ({sig.indication.value}" + (
            f" / {sig.sub_indication})" if sig.sub_indication else ")"
        )
        level = f", PAdES {sig.pades_level.value}" if sig.pades_level.value != "NONE" else ""
        out.append(
            (
                "li",
                f"{label} '{sig.field_name}'{who}{when_text}: {sig_verdict}{level}"
                + (f" - {sig.reasons[0]}" if sig.reasons else ""),
            )
        )
    return out


def summary_text(
    report: ValidationReport, language: str = "th", verdict: DocumentVerdict | None = None
) -> str:
    """A few lines for a person; Buddhist-era dates in Thai. ``verdict`` (with the registry's
    status) defaults to the signatures' own."""
    return "\n".join(
        ("- " if kind == "li" else "") + text for kind, text in _lines(report, language, verdict)
    )


def summary_html(
    report: ValidationReport, language: str = "th", verdict: DocumentVerdict | None = None
) -> str:
    """The same summary as a small self-contained HTML fragment (escaped)."""
    parts = [f'<section class="validation-report" lang="{html.escape(language)}">']
    items: list[str] = []
    for kind, text in _lines(report, language, verdict):
        if kind == "li":
            items.append(f"<li>{html.escape(text)}</li>")
        else:
            tag = "h2" if kind == "h" else "p"
            parts.append(f"<{tag}>{html.escape(text)}</{tag}>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    parts.append(f"<p><small>SHA-256 {html.escape(report.document_sha256)}</small></p>")
    parts.append("</section>")
    return "\n".join(parts)
