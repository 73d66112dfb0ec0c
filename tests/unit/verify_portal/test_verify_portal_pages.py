"""The verify portal's pages over HTTP (Starlette TestClient), with fake peers."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import timedelta
from html import unescape

import pytest
from egov.registry.v1 import registry_pb2
from egov.type.v1 import party_pb2
from egov_common.clock import FixedClock
from egov_verify_portal.adapters import peers
from egov_verify_portal.app import PortalConfig, create_app
from egov_verify_portal.domain.report import ProofCheck, RegistryFinding, RegistryStatus, Verdict
from egov_verify_portal.domain.services import DocumentRejected, PeerUnavailable, RejectionReason
from starlette.testclient import TestClient
from verify_portal_fixtures import (
    DOC_ID,
    FONTS,
    MAX_UPLOAD,
    MINIMAL_PDF,
    NEWER_ID,
    NOW,
    SIGNER_TH,
    UNKNOWN_ID,
    FakeTrustServices,
    registered,
    report,
    signature,
    upload,
)


def sealed_token(html: str) -> str:
    match = re.search(r'name="report" value="([^"]+)"', html)
    assert match, "report page carries no sealed report"
    return match.group(1)


# ---- upload page ------------------------------------------------------------------------------


def test_upload_page_is_thai_by_default_and_shows_the_size_limit(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert '<html lang="th">' in page.text
    assert "ขนาดไฟล์สูงสุด 64 KB" in page.text
    assert f'data-max-bytes="{MAX_UPLOAD}"' in page.text
    assert 'type="file"' in page.text and 'accept="application/pdf,.pdf"' in page.text
    assert '<label for="file"' in page.text


def test_language_switch_by_query_sticks_in_a_cookie(client: TestClient) -> None:
    english = client.get("/?lang=en")
    assert '<html lang="en">' in english.text
    assert "Maximum file size 64 KB" in english.text
    assert english.cookies.get("lang") == "en"
    again = client.get("/")
    assert '<html lang="en">' in again.text
    back = client.get("/?lang=th")
    assert '<html lang="th">' in back.text


def test_an_unknown_language_falls_back_to_thai(client: TestClient) -> None:
    assert '<html lang="th">' in client.get("/?lang=xx").text


# ---- security headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/static/portal.css", "/static/portal.js", "/nowhere", "/healthz"]
)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_pages_have_no_inline_script_or_style_and_load_nothing_external(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.documents[DOC_ID] = registered()
    pages = [client.get("/").text, upload(client).text, client.get(f"/d/{DOC_ID}").text]
    for html in pages:
        assert "<style" not in html
        assert " style=" not in html
        assert re.search(r"<script(?![^>]*\bsrc=\"/static/)", html) is None
        assert " on" + "click=" not in html and " onload=" not in html
        assert "http://" not in html and "https://" not in html.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )


def test_static_files_have_their_content_types(client: TestClient) -> None:
    assert client.get("/static/portal.css").headers["content-type"].startswith("text/css")
    assert "javascript" in client.get("/static/portal.js").headers["content-type"]


# ---- report page ------------------------------------------------------------------------------


def test_a_valid_document_says_valid_with_icon_colour_and_the_thai_signer_name(
    client: TestClient,
) -> None:
    page = upload(client)
    assert page.status_code == 200
    assert 'data-verdict="valid"' in page.text
    assert 'class="verdict verdict-valid"' in page.text
    assert '<svg class="icon"' in page.text
    assert ">ถูกต้อง<" in page.text
    assert SIGNER_TH in page.text
    assert "PNOTH-1-2345-xxxxx-xx-1" in page.text
    assert "B-LTA" in page.text
    # Buddhist-era date in Thai, Bangkok time: 04:50 UTC is 11:50 in Bangkok
    assert "25 พฤศจิกายน 2569 เวลา 11:50:00 น." in page.text
    assert "ยืนยันด้วยตราประทับเวลา" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_the_file_reaches_the_signing_service_unchanged_with_its_name(
    client: TestClient, services: FakeTrustServices
) -> None:
    upload(client, MINIMAL_PDF, name="ใบรับรอง.pdf")
    assert services.received == [(MINIMAL_PDF, "ใบรับรอง.pdf", "th")]


def test_a_tampered_document_says_not_valid_and_why(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(Verdict.INVALID)
    page = upload(client)
    assert 'data-verdict="invalid"' in page.text
    assert ">ไม่ถูกต้อง<" in page.text
    assert "เนื้อหาเอกสารถูกแก้ไขหลังลงลายมือชื่อ" in page.text
    english = upload(client, lang="en")
    assert ">Not valid<" in english.text
    assert "the document&#39;s content was changed after signing" in english.text


def test_a_page_swapped_after_signing_shows_the_forbidden_change(
    client: TestClient, services: FakeTrustServices
) -> None:
    swapped = signature(
        Verdict.INVALID,
        sub_indication="ILLEGAL_MODIFICATIONS",
        covers_whole_document=False,
        coverage="ENTIRE_REVISION",
        modifications="OTHER",
        modifications_allowed=False,
    )
    services.next_report = report(Verdict.INVALID, signatures=(swapped,))
    page = upload(client, lang="en")
    assert "not allowed" in page.text
    assert "changes that are not allowed (changes to content or structure)" in page.text
    assert "the signed version; content was added later" in page.text


def test_an_untrusted_chain_says_cannot_tell(
    client: TestClient, services: FakeTrustServices
) -> None:
    sig = signature(
        Verdict.INDETERMINATE,
        indication="INDETERMINATE",
        sub_indication="NO_CERTIFICATE_CHAIN_FOUND",
        certificate_trusted=False,
    )
    services.next_report = report(Verdict.INDETERMINATE, signatures=(sig,))
    page = upload(client, lang="en")
    assert 'data-verdict="indeterminate"' in page.text
    assert ">Cannot tell<" in page.text
    assert "no certificate chain to a trusted authority" in page.text


def test_a_revoked_registry_entry_makes_a_well_signed_document_not_valid(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(
        registry=registered(
            RegistryStatus.REVOKED,
            revocation_reason="ออกให้ผิดบุคคล",
            revocation_reason_code="ISSUED_IN_ERROR",
        )
    )
    page = upload(client)
    assert 'data-verdict="invalid"' in page.text
    assert "ถูกเพิกถอน" in page.text
    assert "ออกให้ผิดบุคคล (ออกผิดพลาด)" in page.text


def test_a_superseded_entry_links_to_the_newer_version(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(
        registry=registered(RegistryStatus.SUPERSEDED, superseded_by=NEWER_ID)
    )
    page = upload(client, lang="en")
    assert 'data-verdict="indeterminate"' in page.text
    assert f'href="/d/{NEWER_ID}"' in page.text
    assert "Superseded by a newer version" in page.text


def test_a_registry_claim_whose_proof_fails_cannot_be_relied_on(
    client: TestClient, services: FakeTrustServices
) -> None:
    finding = RegistryFinding(
        status=RegistryStatus.REGISTERED,
        entry=registered().entry,
        proof=ProofCheck.FAILED,
        proof_detail="inclusion proof does not lead to the tree head's root",
    )
    services.next_report = report(registry=finding)
    page = upload(client, lang="en")
    assert 'data-verdict="indeterminate"' in page.text
    assert "inclusion proof does NOT verify" in page.text


def test_a_registered_document_shows_its_checked_inclusion_proof(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())
    page = upload(client, lang="en")
    assert "Registered" in page.text
    assert "inclusion proof checked: it verifies" in page.text
    assert f'href="/d/{DOC_ID}"' in page.text


def test_the_report_page_switches_language_without_uploading_again(
    client: TestClient, services: FakeTrustServices
) -> None:
    page = upload(client)
    again = client.post("/report", data={"report": sealed_token(page.text), "lang": "en"})
    assert again.status_code == 200
    assert '<html lang="en">' in again.text
    assert ">Valid<" in again.text
    assert SIGNER_TH in again.text
    assert "25 November 2026, 11:50:00" in again.text
    assert len(services.received) == 1


def test_a_forged_report_is_not_shown_or_downloaded(client: TestClient) -> None:
    token = sealed_token(upload(client).text)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for path in ("/report", "/report.xml", "/report.pdf"):
        response = client.post(path, data={"report": forged})
        assert response.status_code == 400
        assert "หมดอายุหรือไม่ถูกต้อง" in response.text


def test_the_etsi_xml_report_downloads_as_xml(client: TestClient) -> None:
    token = sealed_token(upload(client).text)
    response = client.post("/report.xml", data={"report": token})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "attachment" in response.headers["content-disposition"]
    assert b"http://uri.etsi.org/19102" in response.content


def test_the_summary_downloads_as_a_one_page_pdf(client: TestClient) -> None:
    token = sealed_token(upload(client).text)
    response = client.post("/report.pdf", data={"report": token, "lang": "th"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response.content.count(b"/Type /Page\n") + response.content.count(b"/Type /Page ") <= 1


# ---- bad input --------------------------------------------------------------------------------


def test_a_non_pdf_is_refused_with_a_clear_message(
    client: TestClient, services: FakeTrustServices
) -> None:
    response = upload(client, b"GIF89a not a pdf at all", name="cat.gif")
    assert response.status_code == 415
    assert "ไฟล์นี้ไม่ใช่ PDF" in response.text
    assert services.received == []


def test_an_oversized_file_is_refused_while_it_streams(
    client: TestClient, services: FakeTrustServices
) -> None:
    big = b"%PDF-1.7\n" + b"0" * (MAX_UPLOAD + 1)
    response = upload(client, big, lang="en")
    assert response.status_code == 413
    assert "larger than 64 KB" in response.text or "ไฟล์มีขนาดเกิน 64 KB" in response.text
    assert services.received == []


def test_an_oversized_body_without_content_length_is_cut_off(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"%PDF-1.7\n"
        for _ in range(4 * MAX_UPLOAD // 4096):
            yield b"0" * 4096

    response = client.post("/verify", content=chunks(), headers={"content-type": "application/pdf"})
    assert response.status_code == 413


def test_a_declared_length_over_the_limit_is_refused_before_reading(client: TestClient) -> None:
    response = client.post(
        "/verify",
        content=b"%PDF-1.7\n",
        headers={"content-type": "application/pdf", "content-length": str(10 * MAX_UPLOAD)},
    )
    assert response.status_code == 413


def test_a_bare_pdf_body_is_accepted(client: TestClient, services: FakeTrustServices) -> None:
    response = client.post(
        "/verify", content=MINIMAL_PDF, headers={"content-type": "application/pdf"}
    )
    assert response.status_code == 200
    assert services.received[0][0] == MINIMAL_PDF


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", ""])
def test_other_content_types_are_refused(client: TestClient, content_type: str) -> None:
    response = client.post("/verify", content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 400
    assert "คำขอไม่ถูกต้อง" in response.text


def test_a_form_without_a_file_asks_for_one(client: TestClient) -> None:
    response = client.post("/verify", files={"other": ("x.txt", b"hello", "text/plain")})
    assert response.status_code == 400
    assert "โปรดเลือกไฟล์ PDF" in response.text


def test_a_broken_pdf_gets_a_clear_message(client: TestClient, services: FakeTrustServices) -> None:
    services.raise_on_verify = DocumentRejected(RejectionReason.BROKEN_PDF, "startxref loop")
    response = upload(client, lang="en")
    assert response.status_code == 422
    assert "This PDF cannot be read" in response.text
    assert "startxref" not in response.text


def test_a_pdf_without_signatures_says_there_is_nothing_to_verify(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(Verdict.INDETERMINATE, signatures=())
    response = upload(client, lang="en")
    assert response.status_code == 422
    assert "has no electronic signature" in response.text


def test_a_pdf_with_only_a_document_time_stamp_says_there_is_nothing_to_verify(
    client: TestClient, services: FakeTrustServices
) -> None:
    stamp = signature(is_document_timestamp=True, signer_name="Public TSA")
    services.next_report = report(Verdict.VALID, signatures=(stamp,))
    response = upload(client, lang="en")
    assert response.status_code == 422
    assert "has no electronic signature" in response.text
    assert 'data-verdict="valid"' not in response.text


def test_an_unavailable_signing_service_is_a_message_and_the_portal_keeps_serving(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.raise_on_verify = PeerUnavailable("signing: UNAVAILABLE")
    response = upload(client, lang="en")
    assert response.status_code == 503
    assert "unavailable right now" in response.text
    services.raise_on_verify = None
    assert upload(client).status_code == 200


def test_an_unexpected_error_shows_a_page_not_a_stack_trace(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.raise_on_verify = RuntimeError("boom in a library")
    response = upload(client, lang="en")
    assert response.status_code == 500
    assert "Traceback" not in response.text and "boom" not in response.text
    assert "<html" in response.text
    assert client.get("/").status_code == 200


def test_unknown_pages_and_wrong_methods_get_a_page(client: TestClient) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "ไม่พบหน้าที่ต้องการ" in missing.text
    wrong = client.get("/verify")
    assert wrong.status_code == 405 and "<html" in wrong.text


# ---- /d/<document id> ---------------------------------------------------------------------------


def test_the_qr_link_page_shows_the_registry_entry_and_invites_an_upload(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.documents[DOC_ID] = registered()
    page = client.get(f"/d/{DOC_ID}")
    assert page.status_code == 200
    for text in (
        DOC_ID,
        "กรมพัฒนาธุรกิจการค้า",
        "business-registration",
        "ab" * 32,
        "ขึ้นทะเบียนแล้ว",
    ):
        assert text in page.text
    assert "25 พฤศจิกายน 2569" in page.text
    assert f'name="expected_document_id" value="{DOC_ID}"' in page.text
    assert 'action="/verify?lang=th"' in page.text


def test_the_qr_link_page_of_a_revoked_document_shows_revoked_and_why(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.documents[DOC_ID] = registered(
        RegistryStatus.REVOKED, revocation_reason="forged papers", revocation_reason_code="FRAUD"
    )
    page = client.get(f"/d/{DOC_ID}?lang=en")
    assert "Revoked" in page.text
    assert "forged papers (obtained by fraud)" in page.text
    assert "registry-revoked" in page.text


def test_an_unknown_document_id_is_a_not_found_page(client: TestClient) -> None:
    page = client.get(f"/d/{UNKNOWN_ID}?lang=en")
    assert page.status_code == 404
    assert f"No document {UNKNOWN_ID} in the registry" in page.text
    odd = client.get("/d/%3Cscript%3E")
    assert odd.status_code == 404 and "<script>" not in odd.text


@pytest.mark.parametrize(
    "path",
    [
        # words of a visitor's choosing would read as the portal's own message
        "/d/Call%2002-123-4567%20to%20unlock%20your%20ID",
        "/verify/DOC%00",
        "/d/" + "A" * 4000,
    ],
)
def test_a_link_that_is_no_document_id_is_not_repeated_on_the_page(
    client: TestClient, services: FakeTrustServices, path: str
) -> None:
    page = client.get(path + "?lang=en")
    assert page.status_code == 404
    shown = re.sub(r"<[^>]*>", "", page.text)  # what a visitor reads, not the links
    assert "Page not found" in shown
    assert "No document" not in shown
    assert "unlock" not in shown and "\x00" not in shown and "A" * 200 not in shown


def test_an_unreachable_registry_is_a_message(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.registry_down = True
    page = client.get(f"/d/{DOC_ID}?lang=en")
    assert page.status_code == 503
    assert "registry cannot be reached" in page.text


def test_comparing_the_registered_copy_says_it_matches(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())
    page = upload(client, expected_document_id=DOC_ID, lang="en")
    assert f"Your file is the registered document {DOC_ID}" in page.text
    assert 'data-verdict="valid"' in page.text


def test_comparing_another_file_says_it_is_not_the_registered_document(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report()  # validly signed, but not this registry entry
    page = upload(client, expected_document_id=DOC_ID, lang="en")
    assert f"Your file is NOT the registered document {DOC_ID}" in page.text
    assert 'data-verdict="invalid"' in page.text


# ---- probes ------------------------------------------------------------------------------------


def test_health_and_readiness(client: TestClient, services: FakeTrustServices) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    services.ready["registry"] = False
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["peers"] == {"signing": True, "registry": False}


def test_content_after_the_last_signature_and_file_problems_are_shown(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = dataclasses.replace(
        report(Verdict.INDETERMINATE),
        unsigned_content_after_last_signature=True,
        notes=("2 bytes follow the last signed revision",),
    )
    page = upload(client, lang="en")
    assert "Content was added after the last signed version" in page.text
    assert "2 bytes follow the last signed revision" in page.text


def test_an_unreachable_registry_makes_a_well_signed_document_cannot_tell(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=RegistryFinding(status=RegistryStatus.UNAVAILABLE))
    page = upload(client, lang="en")
    assert 'data-verdict="indeterminate"' in page.text
    assert "the registry cannot be asked right now" in page.text


def test_the_qr_link_page_of_an_answer_about_another_document_shows_only_the_failed_check(
    client: TestClient, services: FakeTrustServices
) -> None:
    # The registry answered for another document (the client refused it): nothing of that
    # answer is shown, only that the registry's answer did not check out.
    services.documents[DOC_ID] = RegistryFinding(
        RegistryStatus.UNAVAILABLE, proof=ProofCheck.FAILED, proof_detail="another document"
    )
    page = client.get(f"/d/{DOC_ID}?lang=en")
    assert page.status_code == 200
    assert "proof-failed" in page.text
    assert "registry-unavailable" in page.text
    assert "registered_hash" not in page.text and "ab" * 32 not in page.text


# ---- the QR flow's comparison: sealed, validated, one verdict --------------------------------


def compare_line(html: str) -> str:
    match = re.search(r'<p class="compare[^"]*"[^>]*>(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]*>|\s+", " ", match.group(1)).strip() if match else ""


def verdict_of(html: str) -> str:
    match = re.search(r'data-verdict="(\w+)"', html)
    assert match, "no verdict on the page"
    return match.group(1)


def test_the_expected_document_travels_in_the_seal_not_in_a_form_field(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())  # registered as DOC_ID
    page = upload(client, expected_document_id=NEWER_ID, lang="en")
    assert verdict_of(page.text) == "invalid"
    assert f"NOT the registered document {NEWER_ID}" in compare_line(page.text)
    assert 'name="expected_document_id"' not in page.text  # the sealed form has no such field
    token = sealed_token(page.text)
    # re-shown without the field: still the comparison the first page made
    again = client.post("/report", data={"report": token, "lang": "en"})
    assert verdict_of(again.text) == "invalid"
    assert f"NOT the registered document {NEWER_ID}" in compare_line(again.text)
    # a field posted beside the seal changes nothing
    other = client.post(
        "/report", data={"report": token, "lang": "en", "expected_document_id": DOC_ID}
    )
    assert verdict_of(other.text) == "invalid"
    assert f"NOT the registered document {NEWER_ID}" in compare_line(other.text)


def test_another_site_cannot_put_its_words_on_a_genuine_report(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())
    token = sealed_token(upload(client, lang="en").text)
    words = f"{DOC_ID}. FRAUD ALERT: this certificate was forged. Call +66 2 000 0000 now"
    page = client.post(
        "/report", data={"report": token, "lang": "en", "expected_document_id": words}
    )
    assert page.status_code == 200
    assert verdict_of(page.text) == "valid"
    assert compare_line(page.text) == ""
    assert "FRAUD" not in page.text and "+66" not in page.text


@pytest.mark.parametrize(
    "expected",
    [
        f"{DOC_ID}. FRAUD ALERT: call +66 2 000 0000",
        "DOC-01TEST",
        DOC_ID.lower(),
        "<script>alert(1)</script>",
    ],
)
def test_an_expected_document_id_not_of_the_registry_s_form_is_refused_unrepeated(
    client: TestClient, services: FakeTrustServices, expected: str
) -> None:
    services.next_report = report(registry=registered())
    page = upload(client, expected_document_id=expected, lang="en")
    assert page.status_code == 400
    assert "The upload was not understood" in page.text
    assert expected not in page.text and "FRAUD" not in page.text
    assert services.received == []


def pdf_text(pdf: bytes) -> list[str]:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return [line.strip() for line in out.stdout.decode().splitlines() if line.strip()]


def test_the_summary_and_the_xml_give_the_page_s_verdict_for_another_file(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())  # well signed, registered as DOC_ID
    page = upload(client, expected_document_id=NEWER_ID, lang="en")
    assert verdict_of(page.text) == "invalid"
    token = sealed_token(page.text)
    lines = pdf_text(client.post("/report.pdf", data={"report": token, "lang": "en"}).content)
    assert "Not valid" in lines and "Valid" not in lines
    assert f"Your file is NOT the registered document {NEWER_ID}" in lines
    assert any("the uploaded file is not the registered document" in line for line in lines)
    xml = client.post("/report.xml", data={"report": token}).content
    assert b'verdict="invalid"' in xml and b'is_expected_document="no"' in xml
    assert b"http://uri.etsi.org/19102" in xml  # the signing service's report, unchanged


def test_the_summary_of_the_registered_copy_says_it_is_the_one(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=registered())
    token = sealed_token(upload(client, expected_document_id=DOC_ID, lang="en").text)
    lines = pdf_text(client.post("/report.pdf", data={"report": token, "lang": "en"}).content)
    assert "Valid" in lines
    assert f"Your file is the registered document {DOC_ID}" in lines
    xml = client.post("/report.xml", data={"report": token}).content
    assert b'verdict="valid"' in xml and b'is_expected_document="yes"' in xml


def test_an_unreachable_registry_cannot_say_the_file_is_another_one(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.next_report = report(registry=RegistryFinding(status=RegistryStatus.UNAVAILABLE))
    page = upload(client, expected_document_id=DOC_ID, lang="en")
    assert verdict_of(page.text) == "indeterminate"
    assert compare_line(page.text) == ""


# ---- links, headers, forms --------------------------------------------------------------------


def lang_links(html: str) -> list[str]:
    return re.findall(r'<a class="lang-switch" href="([^"]*)"', html)


@pytest.mark.parametrize("path", ["//evil.example/x", "/d//evil.example", "/%2F%2Fevil.example"])
def test_the_language_link_stays_on_the_page_whatever_path_a_link_made_up(
    client: TestClient, path: str
) -> None:
    page = client.get("https://testserver" + path)
    assert page.status_code == 404
    assert lang_links(page.text) == ["?lang=en"]
    assert "evil.example" not in page.text


def test_the_language_link_of_a_page_switches_that_page(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.documents[DOC_ID] = registered()
    assert lang_links(client.get(f"/d/{DOC_ID}").text) == ["?lang=en"]
    assert lang_links(client.get("/?lang=en").text) == ["?lang=th"]


def test_over_https_every_response_asks_for_https_only_and_the_cookie_is_secure(
    client: TestClient,
) -> None:
    for path in ("/?lang=en", "/static/portal.css", "/nowhere", "/healthz"):
        response = client.get(path)
        assert response.headers["strict-transport-security"] == "max-age=31536000"
    cookie = client.get("/?lang=th").headers["set-cookie"]
    assert "lang=th" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_plain_http_without_a_public_https_url_asks_nothing_of_the_browser(
    services: FakeTrustServices,
) -> None:
    config = PortalConfig(
        max_upload_bytes=MAX_UPLOAD,
        seal_key=b"k" * 32,
        report_ttl=timedelta(hours=1),
        fonts=FONTS,
        public_url="http://localhost:8080",
    )
    with TestClient(create_app(services, config, FixedClock(NOW))) as plain:
        response = plain.get("/?lang=en")
    assert "strict-transport-security" not in response.headers
    assert "Secure" not in response.headers["set-cookie"]


def test_a_tls_connection_alone_is_enough_for_hsts(services: FakeTrustServices) -> None:
    config = PortalConfig(
        max_upload_bytes=MAX_UPLOAD, seal_key=b"k" * 32, report_ttl=timedelta(hours=1), fonts=FONTS
    )
    app = create_app(services, config, FixedClock(NOW))
    with TestClient(app, base_url="https://portal.example") as tls:
        assert tls.get("/").headers["strict-transport-security"] == "max-age=31536000"


def test_two_files_in_one_form_are_refused_not_joined(
    client: TestClient, services: FakeTrustServices
) -> None:
    response = client.post(
        "/verify?lang=en",
        files=[
            ("file", ("a.pdf", MINIMAL_PDF, "application/pdf")),
            ("file", ("b.pdf", b"EXTRA-BYTES-APPENDED", "application/pdf")),
        ],
    )
    assert response.status_code == 400
    assert "The upload was not understood" in response.text
    same_name = client.post(
        "/verify?lang=en",
        files=[
            ("file", ("a.pdf", MINIMAL_PDF, "application/pdf")),
            ("file", ("a.pdf", b"EXTRA-BYTES-APPENDED", "application/pdf")),
        ],
    )
    assert same_name.status_code == 400
    assert services.received == []


# ---- what the registry says, as the public sees it -----------------------------------------


def test_the_qr_link_page_of_a_refused_answer_keeps_the_id_asked_for(
    client: TestClient, services: FakeTrustServices
) -> None:
    services.documents[DOC_ID] = RegistryFinding(
        RegistryStatus.UNAVAILABLE, proof=ProofCheck.FAILED, proof_detail="another document"
    )
    page = client.get(f"/d/{DOC_ID}?lang=en")
    title = re.search(r"<title>(.*?)</title>", page.text)
    assert title and title.group(1).startswith(f"{DOC_ID} - ")
    form = re.search(r'<form class="upload".*?</form>', page.text, re.S)
    assert form and f'name="expected_document_id" value="{DOC_ID}"' in form.group(0)
    assert DOC_ID in re.sub(r"<[^>]*>", "", page.text.split("<main", 1)[1])


def test_national_ids_the_registry_holds_in_free_text_are_not_shown(
    client: TestClient, services: FakeTrustServices
) -> None:
    document = registry_pb2.Document(
        document_id=DOC_ID,
        document_type="birth-certificate",
        status=registry_pb2.DOCUMENT_STATUS_REVOKED,
        sha256=b"\x01" * 32,
        issuer=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value="0994000000013"
        ),
        metadata={
            "title": "Birth certificate of Somchai Jaidee, national id 1101700203451",
            "issuer_name": "District office (clerk 3-1005-01234-56-7)",
        },
        history=[
            registry_pb2.StatusChange(
                status=registry_pb2.DOCUMENT_STATUS_REVOKED,
                reason=registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR,
                reason_text="re-issued; holder 1 1017 00230 70 8 asked",
            )
        ],
    )
    finding = RegistryFinding(
        status=RegistryStatus.REVOKED, entry=peers._entry(document), proof=ProofCheck.VERIFIED
    )
    services.documents[DOC_ID] = finding
    services.next_report = report(registry=finding)
    qr_page = client.get(f"/d/{DOC_ID}?lang=en").text
    report_page = upload(client, lang="en").text
    summary = " ".join(
        pdf_text(client.post("/report.pdf", data={"report": sealed_token(report_page)}).content)
    )
    for shown in (unescape(qr_page), unescape(report_page), summary):
        digits = re.sub(r"[- ]", "", shown)
        for national_id in ("1101700203451", "3100501234567", "1101700230708"):
            assert national_id not in digits
        assert "1-1017-xxxxx-xx-8" in shown  # the revocation reason's, masked as in logs
    assert "1-1017-xxxxx-xx-1" in unescape(qr_page)  # the title's
    assert "0994000000013" in qr_page  # an agency's juristic number is public
