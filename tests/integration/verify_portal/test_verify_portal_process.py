"""The verify portal as a real process: a real registry process, a signing server in the test.

Covers what only a real process shows: uvicorn's handling of the size limit while streaming,
the headers on the wire, the registry's inclusion proof checked by the portal, and that the
portal keeps serving when a peer goes away.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from egov.registry.v1 import registry_pb2
from verify_portal_env import (
    AGENCY,
    SIGNER_TH,
    FakeSigning,
    PortalStack,
    failed_report,
    passed_report,
    portal_stack,
    sha256,
    start_portal,
)

GENUINE = b"%PDF-1.7\n% a certificate, signed\n%%EOF\n"
TAMPERED = b"%PDF-1.7\n% a certificate, signed, then edited\n%%EOF\n"
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    with portal_stack(tmp_path_factory.mktemp("verify-portal"), LIMIT) as running:
        running.signing.answers[sha256(GENUINE)] = passed_report()
        running.signing.answers[sha256(TAMPERED)] = failed_report()
        yield running


@pytest.fixture(scope="module")
def url(stack: PortalStack) -> str:
    return stack.url


@pytest.fixture(scope="module")
def document_id(stack: PortalStack) -> str:
    document = stack.issuer.register(
        sha256=sha256(GENUINE),
        issuer=AGENCY,
        document_type="business-registration",
        metadata={"title": "หนังสือรับรองการจดทะเบียน", "issuer_name_th": "กรมพัฒนาธุรกิจการค้า"},
    )
    return document.document_id


def post_pdf(url: str, content: bytes, **fields: str) -> httpx.Response:
    """Post as the page's form does: the language also in the action URL."""
    return httpx.post(
        url + "/verify?lang=" + fields.get("lang", "th"),
        files={"file": ("certificate.pdf", content, "application/pdf")},
        data=fields,
        timeout=30,
    )


def test_a_registered_genuine_pdf_is_valid_with_a_checked_inclusion_proof(
    url: str, document_id: str
) -> None:
    page = post_pdf(url, GENUINE, lang="en")
    assert page.status_code == 200
    assert 'data-verdict="valid"' in page.text
    assert SIGNER_TH in page.text
    assert "Registered" in page.text and document_id in page.text
    assert "inclusion proof checked: it verifies" in page.text


def test_a_tampered_copy_is_not_valid_and_not_registered(url: str, document_id: str) -> None:
    page = post_pdf(url, TAMPERED, lang="en")
    assert 'data-verdict="invalid"' in page.text
    assert "changed after signing" in page.text
    assert "Not in the registry" in page.text


def test_the_qr_page_shows_the_entry_and_compares_the_copy_in_hand(
    url: str, document_id: str
) -> None:
    page = httpx.get(f"{url}/d/{document_id}?lang=en")
    assert page.status_code == 200
    assert "หนังสือรับรองการจดทะเบียน" in page.text
    assert sha256(GENUINE).hex() in page.text
    assert "inclusion proof checked: it verifies" in page.text
    same = post_pdf(url, GENUINE, lang="en", expected_document_id=document_id)
    assert f"Your file is the registered document {document_id}" in same.text
    other = post_pdf(url, TAMPERED, lang="en", expected_document_id=document_id)
    assert f"Your file is NOT the registered document {document_id}" in other.text


def test_the_downloads_come_from_the_report_page(url: str, document_id: str) -> None:
    page = post_pdf(url, GENUINE)
    token = page.text.split('name="report" value="', 1)[1].split('"', 1)[0]
    xml = httpx.post(url + "/report.xml", data={"report": token})
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    pdf = httpx.post(url + "/report.pdf", data={"report": token})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


def test_security_headers_are_on_the_wire(url: str) -> None:
    response = httpx.get(url + "/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers  # no software and version to fingerprint


def test_an_oversized_upload_is_refused_and_the_portal_keeps_serving(url: str) -> None:
    big = b"%PDF-1.7\n" + b"0" * (LIMIT + 1024) + b"\n%%EOF\n"
    response = post_pdf(url, big, lang="en")
    assert response.status_code == 413
    assert "larger than 256 KB" in response.text

    def stream() -> Iterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(8):
            yield b"0" * LIMIT

    streamed = httpx.post(
        url + "/verify", content=stream(), headers={"content-type": "application/pdf"}, timeout=30
    )
    assert streamed.status_code == 413
    assert httpx.get(url + "/healthz").status_code == 200


def test_a_broken_pdf_is_a_message_not_a_stack_trace(url: str) -> None:
    response = post_pdf(url, b"%PDF-1.7\n1 0 obj << /Broken", lang="en")
    assert response.status_code == 422
    assert "This PDF cannot be read" in response.text
    assert "Traceback" not in response.text


def test_a_revoked_entry_shows_revoked_with_its_reason(stack: PortalStack, url: str) -> None:
    issuer, signing = stack.issuer, stack.signing
    revoked_pdf = b"%PDF-1.7\n% another certificate\n%%EOF\n"
    signing.answers[sha256(revoked_pdf)] = passed_report()
    document = issuer.register(sha256=sha256(revoked_pdf), issuer=AGENCY, document_type="permit")
    issuer.revoke(
        document.document_id, registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR, "ออกให้ผิดบุคคล"
    )
    page = httpx.get(f"{url}/d/{document.document_id}")
    assert "ถูกเพิกถอน" in page.text and "ออกให้ผิดบุคคล" in page.text
    report = post_pdf(url, revoked_pdf, lang="en")
    assert 'data-verdict="invalid"' in report.text
    assert "revoked in the registry" in report.text


def test_readiness_follows_the_peers_and_pages_survive_a_dead_signing_service(
    tmp_path: Path, stack: PortalStack
) -> None:
    registry = stack.registry
    with (
        FakeSigning() as signing,
        start_portal(tmp_path / "portal", signing.address, registry.grpc_address) as portal,
    ):
        signing.answers[sha256(GENUINE)] = passed_report()
        assert httpx.get(portal.http_url + "/readyz").status_code == 200
        signing.stop()
        not_ready = httpx.get(portal.http_url + "/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["peers"]["signing"] is False
        page = post_pdf(portal.http_url, GENUINE, lang="en")
        assert page.status_code == 503
        assert "unavailable right now" in page.text
        assert httpx.get(portal.http_url + "/").status_code == 200


def test_a_superseded_entry_links_to_its_replacement(stack: PortalStack, url: str) -> None:
    old_pdf = b"%PDF-1.7\n% permit, first version\n%%EOF\n"
    new_pdf = b"%PDF-1.7\n% permit, corrected version\n%%EOF\n"
    stack.signing.answers[sha256(old_pdf)] = passed_report()
    old = stack.issuer.register(sha256=sha256(old_pdf), issuer=AGENCY, document_type="permit")
    new = stack.issuer.register(sha256=sha256(new_pdf), issuer=AGENCY, document_type="permit")
    stack.issuer.supersede(old.document_id, new.document_id, "corrected address")

    page = httpx.get(f"{url}/d/{old.document_id}?lang=en")
    assert "Superseded by a newer version" in page.text
    assert f'href="/d/{new.document_id}"' in page.text
    assert "inclusion proof checked: it verifies" in page.text
    report = post_pdf(url, old_pdf, lang="en")
    assert 'data-verdict="indeterminate"' in report.text
    assert "a newer version of the document replaces it" in report.text
    assert httpx.get(f"{url}/d/{new.document_id}?lang=en").status_code == 200
