"""The report as ETSI TS 119 102-2 XML and as a human summary."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import types
import typing
import xml.etree.ElementTree as ET
from typing import Any

import pytest
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


def _schema_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """pyHanko's dataclasses generated from the TS 119 102-2 XSD (they import xsdata only for
    a date type; a stand-in is enough to read their element order)."""
    if importlib.util.find_spec("xsdata") is None:
        datatype = types.ModuleType("xsdata.models.datatype")
        for name in ("XmlDateTime", "XmlDuration", "XmlDate", "XmlTime", "XmlPeriod"):
            setattr(datatype, name, type(name, (str,), {}))
        monkeypatch.setitem(sys.modules, "xsdata", types.ModuleType("xsdata"))
        monkeypatch.setitem(sys.modules, "xsdata.models", types.ModuleType("xsdata.models"))
        monkeypatch.setitem(sys.modules, "xsdata.models.datatype", datatype)
        for name in [m for m in sys.modules if m.startswith("pyhanko.generated")]:
            monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("pyhanko.generated.etsi.ts_11910202")


def _misplaced(element: ET.Element, cls: Any, path: str) -> list[str]:
    """Child elements that the schema type does not allow, or not in the schema's order."""
    if not dataclasses.is_dataclass(cls):
        return []
    hints = typing.get_type_hints(cls)
    default_ns = getattr(getattr(cls, "Meta", None), "namespace", None)
    allowed = []
    for f in dataclasses.fields(cls):
        kind = f.metadata.get("type", "Element")
        if kind == "Element":
            ns = f.metadata.get("namespace", default_ns)
            allowed.append((ns, f.metadata.get("name", f.name), hints[f.name]))
        elif kind == "Wildcard":
            allowed.append(("*", "*", None))
    problems, position = [], 0
    for child in element:
        ns, _, name = child.tag[1:].partition("}")
        match = next(
            (
                i
                for i in range(position, len(allowed))
                if allowed[i][0] == "*" or allowed[i][:2] == (ns, name)
            ),
            None,
        )
        if match is None:
            problems.append(f"{path}/{name}")
            continue
        position = match
        inner = allowed[match][2]
        while typing.get_args(inner):
            inner = next(a for a in typing.get_args(inner) if a not in (type(None), Ellipsis))
        problems += _misplaced(child, inner, f"{path}/{name}")
    return problems


def test_etsi_xml_follows_the_ts_119_102_2_schema_element_order(
    pki: SigningPki, keys: SoftwareKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = _schema_module(monkeypatch)
    root = ET.fromstring(to_etsi_xml(_report(pki, keys)))
    assert _misplaced(root, schema.ValidationReportType, "ValidationReport") == []


def test_etsi_xml_times_are_utc_whatever_zone_the_signer_wrote(
    pki: SigningPki, keys: SoftwareKeys
) -> None:
    from datetime import datetime, timedelta, timezone

    report = _report(pki, keys)
    bangkok = datetime(2026, 11, 25, 11, 50, tzinfo=timezone(timedelta(hours=7)))
    signature = dataclasses.replace(report.signatures[0], claimed_signing_time=bangkok)
    report = dataclasses.replace(report, signatures=(signature, *report.signatures[1:]))
    root = ET.fromstring(to_etsi_xml(report))
    time = root.findtext(
        f"{E}SignatureValidationReport/{E}SignatureAttributes/{E}SigningTime/{E}Time"
    )
    assert time == "2026-11-25T04:50:00Z"
