"""The verify portal in headless Chromium (Debian's /usr/bin/chromium through Playwright).

Processes: the portal (``python -m egov_verify_portal``) and the registry
(``python -m egov_registry``) run for real; the signing service's VerifyDocument is served by
a gRPC server in this test that reports what the signing service reports for such files (a
passed B-LTA signature by a Thai e-seal, a HASH_FAILURE for a byte flipped, an
ILLEGAL_MODIFICATIONS for a page swapped after signing). A screenshot of every result page is
saved under ``test-artifacts/verify-portal/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from egov_testing.corpus import corpus_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "verify_portal"))

from verify_portal_env import (
    AGENCY,
    SIGNER_TH,
    failed_report,
    passed_report,
    portal_stack,
    sha256,
    start_portal,
    start_registry,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "verify-portal"
TESTDATA = corpus_dir() / "pdf"
LIMIT = 512 * 1024

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def _pdf(name: str, fallback: bytes) -> bytes:
    """A third-party signed PDF from the shared corpus, else a small stand-in."""
    path = TESTDATA / name
    return path.read_bytes() if path.exists() else fallback


GENUINE = _pdf("pades-lta-dss-indirect-arrs-test.pdf", b"%PDF-1.7\n% genuine certificate\n%%EOF\n")
FLIPPED = bytearray(GENUINE)
FLIPPED[len(FLIPPED) // 3] ^= 0x01
BYTE_FLIPPED = bytes(FLIPPED)
PAGE_SWAPPED = GENUINE + b"\n% an incremental update swapping page 1\n%%EOF\n"
REVOKED = b"%PDF-1.7\n% a certificate its issuer revoked\n%%EOF\n"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from egov.registry.v1 import registry_pb2
    from egov.signing.v1 import signing_pb2

    base = tmp_path_factory.mktemp("verify-portal-browser")
    with portal_stack(base, LIMIT) as stack:
        signing, issuer = stack.signing, stack.issuer
        signing.answers[sha256(GENUINE)] = passed_report()
        signing.answers[sha256(BYTE_FLIPPED)] = failed_report()
        signing.answers[sha256(PAGE_SWAPPED)] = failed_report(
            signing_pb2.SUB_INDICATION_ILLEGAL_MODIFICATIONS
        )
        signing.answers[sha256(REVOKED)] = passed_report()
        genuine = issuer.register(
            sha256=sha256(GENUINE),
            issuer=AGENCY,
            document_type="business-registration",
            metadata={
                "title": "หนังสือรับรองการจดทะเบียนนิติบุคคล",
                "issuer_name_th": "กรมพัฒนาธุรกิจการค้า",
            },
        )
        revoked = issuer.register(
            sha256=sha256(REVOKED), issuer=AGENCY, document_type="business-registration"
        )
        issuer.revoke(
            revoked.document_id,
            registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR,
            "ออกหนังสือรับรองให้ผิดนิติบุคคล",
        )
        yield {
            "url": stack.url,
            "genuine_id": genuine.document_id,
            "revoked_id": revoked.document_id,
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="th-TH")
    tab = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        # An HTTP error status of an error page is expected; CSP and script errors are not.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    tab.problems = problems
    yield tab
    context.close()
    # A CSP violation or a script error shows up here: the pages must have none.
    assert problems == []


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def upload(page: Any, tmp_path: Path, content: bytes, name: str = "certificate.pdf") -> None:
    file = tmp_path / name
    file.write_bytes(content)
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="ตรวจสอบ").click()
    page.wait_for_selector("#verdict, .error-message")


def test_the_genuine_certificate_is_valid_with_the_thai_signer(
    page: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(portal["url"] + "/")
    assert page.locator("html").get_attribute("lang") == "th"
    assert "ขนาดไฟล์สูงสุด 512 KB" in page.inner_text("main")
    upload(page, tmp_path, GENUINE)
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-verdict") == "valid"
    assert page.inner_text("#verdict-text") == "ถูกต้อง"
    assert verdict.locator("svg.icon").count() == 1
    assert SIGNER_TH in page.inner_text("main")
    assert "ขึ้นทะเบียนแล้ว" in page.inner_text("main")
    assert "ถูกต้อง" in page.inner_text(".proof-verified")
    screenshot(page, "report-valid-th")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("byte-flipped", BYTE_FLIPPED, "เนื้อหาเอกสารถูกแก้ไขหลังลงลายมือชื่อ"),
        ("page-swapped", PAGE_SWAPPED, "มีการแก้ไขเอกสารหลังลงลายมือชื่อที่ไม่ได้รับอนุญาต"),
    ],
)
def test_tampered_copies_are_not_valid_with_the_reason(
    page: Any, portal: dict[str, Any], tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    page.goto(portal["url"] + "/")
    upload(page, tmp_path, content)
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    assert page.inner_text("#verdict-text") == "ไม่ถูกต้อง"
    assert reason in page.inner_text("#verdict-reason")
    screenshot(page, f"report-{name}-th")


def test_the_qr_link_opens_the_registry_entry(page: Any, portal: dict[str, Any]) -> None:
    page.goto(f"{portal['url']}/d/{portal['genuine_id']}")
    main = page.inner_text("main")
    assert portal["genuine_id"] in main
    assert "หนังสือรับรองการจดทะเบียนนิติบุคคล" in main
    assert "กรมพัฒนาธุรกิจการค้า" in main
    assert sha256(GENUINE).hex() in main
    assert "ขึ้นทะเบียนแล้ว" in main
    assert page.locator("form.upload input[name=expected_document_id]").count() == 1
    screenshot(page, "registry-entry-th")


def test_comparing_the_copy_in_hand_from_the_qr_page(
    page: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(f"{portal['url']}/d/{portal['genuine_id']}?lang=en")
    file = tmp_path / "copy.pdf"
    file.write_bytes(GENUINE)
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#verdict")
    assert f"Your file is the registered document {portal['genuine_id']}" in page.inner_text("main")
    screenshot(page, "compare-match-en")


def test_a_revoked_entry_shows_revoked_and_its_reason(
    page: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(f"{portal['url']}/d/{portal['revoked_id']}")
    assert "ถูกเพิกถอน" in page.inner_text(".registry-status")
    assert "ออกหนังสือรับรองให้ผิดนิติบุคคล" in page.inner_text(".revocation-reason")
    screenshot(page, "registry-revoked-th")
    page.goto(portal["url"] + "/")
    upload(page, tmp_path, REVOKED)
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    assert "เอกสารถูกเพิกถอนในทะเบียน" in page.inner_text("#verdict-reason")
    screenshot(page, "report-revoked-th")


def test_switching_language_on_the_report_page(
    page: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(portal["url"] + "/")
    upload(page, tmp_path, GENUINE)
    page.get_by_role("button", name="Switch to English").click()
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("#verdict-text") == "Valid"
    assert "Registered" in page.inner_text("main")
    assert SIGNER_TH in page.inner_text("main")
    screenshot(page, "report-valid-en")
    page.goto(portal["url"] + "/")  # the choice is remembered
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="เปลี่ยนเป็นภาษาไทย").click()
    assert page.locator("html").get_attribute("lang") == "th"


def test_the_size_limit_is_checked_before_upload(
    page: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(portal["url"] + "/")
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.7\n" + b"0" * (LIMIT + 1))
    page.set_input_files("input#file", str(big))
    status = page.locator("#file-status")
    assert "เกินขนาดสูงสุด 512 KB" in status.inner_text()
    assert page.get_by_role("button", name="ตรวจสอบ").is_disabled()
    screenshot(page, "upload-too-large-th")


def test_a_file_dropped_on_the_page_is_verified(page: Any, portal: dict[str, Any]) -> None:
    page.goto(portal["url"] + "/?lang=en")
    data = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const type = {type: "application/pdf"};
            transfer.items.add(new File([new Uint8Array(bytes)], "dropped.pdf", type));
            return transfer;
        }""",
        list(GENUINE),
    )
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": data})
    assert "dropped.pdf" in page.inner_text("#file-status")
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "valid"
    assert "dropped.pdf" in page.inner_text("main")


def test_a_non_pdf_gets_a_clear_message(page: Any, portal: dict[str, Any], tmp_path: Path) -> None:
    page.goto(portal["url"] + "/")
    upload(page, tmp_path, b"GIF89a\x01\x00", name="photo.pdf")
    assert "ไฟล์นี้ไม่ใช่ PDF" in page.inner_text(".error-message")
    screenshot(page, "error-not-pdf-th")


def test_the_portal_works_without_javascript(
    browser: Any, portal: dict[str, Any], tmp_path: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto(portal["url"] + "/?lang=en")
        file = tmp_path / "doc.pdf"
        file.write_bytes(GENUINE)
        tab.set_input_files("input#file", str(file))
        tab.get_by_role("button", name="Verify").click()
        tab.wait_for_selector("#verdict")
        assert tab.inner_text("#verdict-text") == "Valid"
        with tab.expect_download() as download:
            tab.get_by_role("button", name="One-page summary (PDF)").click()
        saved = tmp_path / "summary.pdf"
        download.value.save_as(str(saved))
        assert saved.read_bytes().startswith(b"%PDF-")
    finally:
        context.close()


def test_the_upload_page_is_usable_by_keyboard(page: Any, portal: dict[str, Any]) -> None:
    page.goto(portal["url"] + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert "file" in focused and "BUTTON" in focused


# ---- third-party PDFs through the real signing service's VerifyDocument ------------------------

TRUST = TESTDATA.parent / "trust"


def _signing_runs() -> bool:
    import importlib.util

    return importlib.util.find_spec("egov_signing.__main__") is not None


@pytest.fixture(scope="module")
def real_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not _signing_runs():
        pytest.skip("the signing service (python -m egov_signing) is not there yet")
    if not TESTDATA.exists():
        pytest.skip(f"third-party corpus not found at {TESTDATA}")
    from egov_testing.processes import free_port, start_service

    base = tmp_path_factory.mktemp("verify-portal-real-signing")
    anchors = json.dumps([str(p) for p in sorted(TRUST.glob("*.pem"))])
    with (
        start_registry(base / "registry") as registry,
        start_service(
            "egov_signing",
            {
                "EGOV_REGISTRY_ADDRESS": registry.grpc_address,
                # no keys service in this test: nothing to sign, only to verify
                "EGOV_KEYS_ADDRESS": f"127.0.0.1:{free_port()}",
                "EGOV_SIGNING_TRUST_ANCHOR_FILES": anchors,
                "EGOV_SIGNING_FETCH_REVOCATION": "false",
                "EGOV_SIGNING_LOG_LEVEL": "WARNING",
            },
            data_dir=base / "signing",
            http=False,
        ) as signing,
        start_portal(base / "portal", signing.grpc_address, registry.grpc_address) as portal,
    ):
        yield portal.http_url


@pytest.mark.parametrize(
    ("name", "verdict", "reason"),
    [
        ("form-update-override-appearance-stream-sneaky.pdf", "invalid", "ILLEGAL_MODIFICATIONS"),
        ("coverage-anomalies__tail-uncovered.pdf", "invalid", "FORMAT_FAILURE"),
    ],
)
def test_real_signing_service_failures_reach_the_page(
    page: Any, real_portal: str, tmp_path: Path, name: str, verdict: str, reason: str
) -> None:
    page.goto(real_portal + "/?lang=en")
    file = tmp_path / name
    file.write_bytes((TESTDATA / name).read_bytes())
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == verdict
    assert reason in page.inner_text("main")
    screenshot(page, f"real-signing-{name.removesuffix('.pdf')}-en")


def test_real_signing_service_a_byte_flipped_signed_pdf_is_not_valid(
    page: Any, real_portal: str, tmp_path: Path
) -> None:
    page.goto(real_portal + "/?lang=en")
    original = (TESTDATA / "pades-lta-dss-indirect-arrs-test.pdf").read_bytes()
    flipped = _flip_inside_first_signed_range(original)
    file = tmp_path / "flipped.pdf"
    file.write_bytes(flipped)
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    screenshot(page, "real-signing-byte-flipped-en")
    with page.expect_download() as download:
        page.get_by_role("button", name="ETSI TS 119 102-2 validation report (XML)").click()
    xml = tmp_path / "report.xml"
    download.value.save_as(str(xml))
    assert b"http://uri.etsi.org/19102/" in xml.read_bytes()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("circular-xref-chain.pdf", "This PDF cannot be read"),
        ("minimal.pdf", "has no electronic signature"),
    ],
)
def test_real_signing_service_bad_inputs_get_a_message(
    page: Any, real_portal: str, tmp_path: Path, name: str, message: str
) -> None:
    page.goto(real_portal + "/?lang=en")
    file = tmp_path / name
    file.write_bytes((TESTDATA / name).read_bytes())
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector(".error-message")
    assert message in page.inner_text(".error-message")


def _flip_inside_first_signed_range(pdf: bytes) -> bytes:
    """Flip one byte of page content that the first signature's /ByteRange covers."""
    import re

    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)", pdf)
    assert match, "no /ByteRange in the corpus file"
    first_length = int(match.group(2))
    stream = pdf.find(b"stream", 0, first_length)
    position = stream + 20 if 0 < stream < first_length - 40 else first_length // 2
    flipped = bytearray(pdf)
    flipped[position] ^= 0x01
    return bytes(flipped)


# ---- story 2 for real: keys + signing + registry issue a Thai e-seal B-LTA certificate ----------

STORY_AGENCY_TH = "กรมการปกครอง"


def _story_services_run() -> bool:
    import importlib.util

    names = ("egov_keys.__main__", "egov_signing.__main__", "egov_registry.__main__")
    keys_world = Path(__file__).resolve().parents[1] / "unit" / "keys" / "keys_world.py"
    return keys_world.exists() and all(importlib.util.find_spec(n) for n in names)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """identity (a local issuer with a JWKS), keys, registry, signing and the portal, all real
    processes but identity; an agency's Thai-named e-seal signs a certificate at B-LTA with a
    QR-code stamp, and signing registers it."""
    if not _story_services_run():
        pytest.skip("keys, signing or registry cannot run as processes yet")
    if not (TESTDATA / "minimal.pdf").exists():
        pytest.skip(f"no unsigned PDF to issue: {TESTDATA / 'minimal.pdf'} is absent")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "keys"))
    from egov.keys.v1 import keys_pb2, keys_pb2_grpc
    from egov.type.v1 import party_pb2
    from egov_clients.registry import RegistryClient
    from egov_clients.signing import SigningClient, Stamp, registration
    from egov_testing.processes import start_service
    from keys_world import AGENCY_ID, LocalIdentity, new_kek

    agency = f"TH-JUR:{AGENCY_ID}"
    signing_registry_token = "signing-registers-for-agencies"
    identity = LocalIdentity()
    base = tmp_path_factory.mktemp("verify-portal-story")
    with identity.serve_jwks() as jwks_url:
        keys_env = {
            "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
            "EGOV_KEYS_IDENTITY_ISSUER": "https://identity.test",
            "EGOV_KEYS_IDENTITY_JWKS_URL": jwks_url,
            "EGOV_KEYS_TOKEN_AUDIENCES": "citizen-portal,urn:egov:keys",
            "EGOV_KEYS_SIGN_CALLERS": "client:signing",  # no mTLS here: signing holds a token
            "EGOV_KEYS_LOG_LEVEL": "WARNING",
        }
        registry_env = {
            "EGOV_REGISTRY_STATIC_TOKENS": json.dumps(
                {
                    signing_registry_token: {
                        "subject": "signing",
                        "scopes": ["registry:issue"],
                        "agency": agency,
                    }
                }
            )
        }
        with (
            start_service("egov_keys", keys_env, data_dir=base / "keys") as keys,
            start_registry(base / "registry", **registry_env) as registry,
        ):
            keys_token = identity.token(
                typ="at+jwt",
                sub="signing",
                client_id="signing",
                aud="urn:egov:keys",
                scope="keys:sign",
                acr=None,
                auth_time=None,
                exp=identity.now() + 3600,
            )
            signing_env = {
                "EGOV_KEYS_ADDRESS": keys.grpc_address,
                "EGOV_REGISTRY_ADDRESS": registry.grpc_address,
                "EGOV_SIGNING_KEYS_TOKEN": keys_token,
                "EGOV_SIGNING_REGISTRY_TOKEN": signing_registry_token,
                "EGOV_SIGNING_LOG_LEVEL": "WARNING",
            }
            with (
                start_service(
                    "egov_signing", signing_env, data_dir=base / "signing", http=False
                ) as signing,
                start_portal(
                    base / "portal", signing.grpc_address, registry.grpc_address
                ) as portal,
                keys.open_channel() as keys_channel,
                SigningClient(signing.grpc_address) as signer,
                RegistryClient(registry.grpc_address, token=signing_registry_token) as issuer,
            ):
                keys_stub = keys_pb2_grpc.KeysServiceStub(keys_channel)
                seal = keys_stub.CreateCredential(
                    keys_pb2.CreateCredentialRequest(
                        idempotency_key="verify-portal-story-seal",
                        owner=party_pb2.PartyIdentifier(
                            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value=AGENCY_ID
                        ),
                        kind=keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL,
                        names=party_pb2.PartyNames(organization_name_th=STORY_AGENCY_TH),
                        authorization_proof=identity.agency_client(),
                    ),
                    timeout=60,
                ).credential
                signed = signer.sign_document(
                    (TESTDATA / "minimal.pdf").read_bytes(),
                    credential_id=seal.credential_id,
                    authorization_proof=identity.agency_client(),
                    level="B-LTA",
                    reason="ออกหนังสือรับรอง",
                    stamp=Stamp(language="th", include_qr_code=True),
                    registration=registration(
                        issuer=agency,
                        document_type="certificate",
                        idempotency_key="verify-portal-story-certificate",
                        metadata={"title": "หนังสือรับรอง", "issuer_name_th": STORY_AGENCY_TH},
                    ),
                )
                assert signed.registered, signed.result
                yield {
                    "url": portal.http_url,
                    "pdf": signed.pdf,
                    "document_id": signed.result.document_id,
                    "verification_url": signed.result.verification_url,
                    "issuer": issuer,
                    "signer": signer,
                    "seal": seal,
                    "identity": identity,
                    "agency": agency,
                    "keys": keys_stub,
                }
    sys.path.remove(str(Path(__file__).resolve().parents[1] / "unit" / "keys"))


def _upload_en(page: Any, url: str, tmp_path: Path, content: bytes, name: str) -> None:
    page.goto(url + "/?lang=en")
    file = tmp_path / name
    file.write_bytes(content)
    page.set_input_files("input#file", str(file))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#verdict, .error-message")


def test_story_the_issued_b_lta_certificate_is_valid_with_the_thai_seal_name(
    page: Any, story: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(story["url"] + "/")
    upload(page, tmp_path, story["pdf"], name="certificate.pdf")
    assert page.locator("#verdict").get_attribute("data-verdict") == "valid", page.inner_text(
        "main"
    )
    main = page.inner_text("main")
    assert STORY_AGENCY_TH in main
    assert "B-LTA" in main
    assert "ยืนยันด้วยตราประทับเวลา" in main  # trusted time from the signature time-stamp
    assert page.locator(".bad").count() == 0  # no change after signing is flagged
    assert "ขึ้นทะเบียนแล้ว" in main and story["document_id"] in main
    assert "ถูกต้อง" in page.inner_text(".proof-verified")
    screenshot(page, "story-certificate-valid-th")
    with page.expect_download() as download:
        page.get_by_role("button", name="สรุปผลการตรวจสอบ 1 หน้า (PDF)").click()
    summary = tmp_path / "summary.pdf"
    download.value.save_as(str(summary))
    (ARTIFACTS / "story-summary-th.pdf").write_bytes(summary.read_bytes())
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(summary), "-"], capture_output=True, check=True, text=True
        ).stdout
        assert STORY_AGENCY_TH in text and "ถูกต้อง" in text and story["document_id"] in text


def test_story_the_qr_code_link_opens_the_registry_entry(page: Any, story: dict[str, Any]) -> None:
    from urllib.parse import urlsplit

    path = urlsplit(story["verification_url"]).path  # the QR code's URL, on this portal
    page.goto(story["url"] + path)
    main = page.inner_text("main")
    assert story["document_id"] in main
    assert sha256(story["pdf"]).hex() in main
    assert "ขึ้นทะเบียนแล้ว" in main
    screenshot(page, "story-qr-entry-th")


def test_story_a_byte_flipped_copy_is_not_valid(
    page: Any, story: dict[str, Any], tmp_path: Path
) -> None:
    flipped = _flip_inside_first_signed_range(story["pdf"])
    _upload_en(page, story["url"], tmp_path, flipped, "flipped.pdf")
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    screenshot(page, "story-byte-flipped-en")


def test_story_a_page_changed_after_signing_is_not_valid(
    page: Any, story: dict[str, Any], tmp_path: Path
) -> None:
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(story["pdf"]))
    stream = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 48 Tf 72 400 Td ET"))
    writer.add_stream_to_page(0, stream)
    out = io.BytesIO()
    writer.write(out)
    _upload_en(page, story["url"], tmp_path, out.getvalue(), "changed.pdf")
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    assert "not allowed" in page.inner_text("#verdict-reason")
    screenshot(page, "story-page-changed-en")


def test_story_a_revoked_certificate_shows_revoked_and_why(
    page: Any, story: dict[str, Any], tmp_path: Path
) -> None:
    from egov.registry.v1 import registry_pb2
    from egov_clients.signing import Stamp, registration

    second = story["signer"].sign_document(
        (TESTDATA / "minimal.pdf").read_bytes(),
        credential_id=story["seal"].credential_id,
        authorization_proof=story["identity"].agency_client(),
        level="B-LTA",
        stamp=Stamp(language="th", include_qr_code=True),
        registration=registration(
            issuer=story["agency"],
            document_type="certificate",
            idempotency_key="verify-portal-story-revoked",
        ),
    )
    story["issuer"].revoke(
        second.result.document_id,
        registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR,
        "ออกหนังสือรับรองผิดราย",
    )
    page.goto(f"{story['url']}/d/{second.result.document_id}")
    assert "ถูกเพิกถอน" in page.inner_text(".registry-status")
    assert "ออกหนังสือรับรองผิดราย" in page.inner_text(".revocation-reason")
    page.goto(story["url"] + "/")
    upload(page, tmp_path, second.pdf, name="revoked.pdf")
    assert page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    assert "เอกสารถูกเพิกถอนในทะเบียน" in page.inner_text("#verdict-reason")
    screenshot(page, "story-revoked-th")


def test_story_a_revoked_signer_is_shown_with_the_reason(
    page: Any, story: dict[str, Any], tmp_path: Path
) -> None:
    from egov.keys.v1 import keys_pb2
    from egov.type.v1 import party_pb2
    from keys_world import AGENCY_ID

    identity = story["identity"]
    fresh = (
        story["keys"]
        .CreateCredential(
            keys_pb2.CreateCredentialRequest(
                idempotency_key="verify-portal-story-revoked-seal",
                owner=party_pb2.PartyIdentifier(
                    namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value=AGENCY_ID
                ),
                kind=keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL,
                names=party_pb2.PartyNames(organization_name_th=STORY_AGENCY_TH),
                authorization_proof=identity.agency_client(),
            ),
            timeout=60,
        )
        .credential
    )
    pdf = (
        story["signer"]
        .sign_document(
            (TESTDATA / "minimal.pdf").read_bytes(),
            credential_id=fresh.credential_id,
            authorization_proof=identity.agency_client(),
            level="B-B",
        )
        .pdf
    )
    story["keys"].RevokeCredential(
        keys_pb2.RevokeCredentialRequest(
            credential_id=fresh.credential_id,
            reason=keys_pb2.CertificateRevocationReason.Value(
                keys_pb2.CertificateRevocationReason.Name(1)
            ),
            authorization_proof=identity.agency_client(),
        ),
        timeout=30,
    )
    page.goto(story["url"] + "/")
    upload(page, tmp_path, pdf, name="revoked-signer.pdf")
    assert page.locator("#verdict").get_attribute("data-verdict") != "valid"
    assert "ใบรับรองของผู้ลงลายมือชื่อถูกเพิกถอน" in page.inner_text("#verdict-reason")
    assert "ถูกเพิกถอน" in page.inner_text(".signature")
    screenshot(page, "story-revoked-signer-th")
