"""The report as ETSI TS 119 102-2 XML and as a human summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from egov_signing.domain.report_formats import ETSI_NS, summary_html, summary_text, to_etsi_xml
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, TrustAnchors
from signing_testkit import SigningPki, SoftwareKeys, make_pdf

E = "{" + ETSI_NS + "}"


def _report(pki: SigningPki, keys: SoftwareKeys):  # type: ignore[no-untyped-def]
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    pdf = service.sign(make_pdf(), SignOptions("cred-1", Level.B_LTA)).pdf
    return DocumentVerifier(TrustAnchors([pki.root_pem])).verify(pdf)


def test_etsi_xml_has_one_signature_report_per_signature_with_indications(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    report = _report(pki, keys)
    root = ET.fromstring(to_etsi_xml(report))
    assert root.tag == E + "ValidationReport"
    reports = root.findall(E + "SignatureValidationReport")
    assert len(reports) == len(report.signatures) == 2
    mains = [r.findtext(f"{E}SignatureValidationStatus/{E}MainIndication") for r in reports]
    assert mains == ["urn:etsi:019102:mainindication:total-passed"] * 2
    ids = [r.findtext(f"{E}SignatureIdentifier/{E}DAIdentifier") for r in reports]
    assert ids[0] == report.signatures[0].field_name
    objects = root.findall(f"{E}SignatureValidationObjects/{E}ValidationObject")
    assert any(o.findtext(E + "ObjectType", "").endswith("certificate") for o in objects)
    # element order of the schema: reports, then objects, then the validator
    tags = [child.tag for child in root]
    assert tags.index(E + "SignatureValidationObjects") > tags.index(
        E + "SignatureValidationReport"
    )
    assert tags[-1] == E + "SignatureValidator"


def test_thai_summary_names_signer_and_verdict(pki: SigningPki, keys: SoftwareKeys) -> None:
    report = _report(pki, keys)
    text = summary_text(report, "th")
    assert text.startswith("เอกสาร: ผ่าน (TOTAL_PASSED)")
    assert "สมชาย ใจดี" in text
    assert "PAdES B-LTA" in text
    assert str(report.signatures[0].claimed_signing_time.year + 543) in text  # type: ignore[union-attr]
    assert "PASSED" in summary_text(report, "en")


def test_html_summary_escapes_text(pki: SigningPki, keys: SoftwareKeys) -> None:
    page = summary_html(_report(pki, keys), "en")
    assert page.startswith('<section class="validation-report" lang="en">')
    assert "<script" not in page
