"""Report values and a fake pair of peers for the verify portal's unit tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from egov_common.clock import FixedClock
from egov_verify_portal.app import PortalConfig, create_app
from egov_verify_portal.domain.report import (
    ProofCheck,
    RegistryEntry,
    RegistryFinding,
    RegistryStatus,
    SignatureFinding,
    Verdict,
    VerificationReport,
)
from egov_verify_portal.domain.services import (
    DocumentNotFound,
    DocumentRejected,
    PeerUnavailable,
    RejectionReason,
)
from egov_verify_portal.domain.summary_pdf import SummaryFonts
from starlette.testclient import TestClient

FONTS = SummaryFonts(
    "/usr/share/fonts/truetype/tlwg/Garuda.ttf", "/usr/share/fonts/truetype/tlwg/Garuda-Bold.ttf"
)
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
SIGNER_TH = "สมชาย ใจดี"
MINIMAL_PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# Document ids of the registry's form: DOC- and 26 Crockford base32 characters.
DOC_ID = "DOC-01JD8W3K5Q7R9T2V4X6Z8B0C1M"
NEWER_ID = "DOC-01JD8W3K5Q7R9T2V4X6Z8B0C2N"
UNKNOWN_ID = "DOC-01JD8W3K5Q7R9T2V4X6Z8B0C3P"


def signature(verdict: Verdict = Verdict.VALID, **changes: object) -> SignatureFinding:
    base = SignatureFinding(
        field_name="Signature1",
        is_document_timestamp=False,
        verdict=verdict,
        indication={"valid": "TOTAL_PASSED", "invalid": "TOTAL_FAILED"}.get(
            verdict.value, "INDETERMINATE"
        ),
        sub_indication="" if verdict is Verdict.VALID else "HASH_FAILURE",
        reason="" if verdict is Verdict.VALID else "the signed bytes were changed",
        signer_name=SIGNER_TH,
        signer_organisation="กรมการปกครอง",
        signer_identifier_masked="PNOTH-1-2345-xxxxx-xx-1",
        signed_at=datetime(2026, 11, 25, 4, 50, tzinfo=UTC),
        time_is_trusted=True,
        covers_whole_document=True,
        coverage="ENTIRE_FILE",
        modifications="NONE",
        modifications_allowed=True,
        certificate_subject=SIGNER_TH,
        certificate_issuer="egov Natural Person CA",
        certificate_valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        certificate_valid_until=datetime(2028, 1, 1, tzinfo=UTC),
        certificate_trusted=True,
        revocation_status="GOOD",
        pades_level="B-LTA",
        certified=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def entry(status: RegistryStatus = RegistryStatus.REGISTERED, **changes: object) -> RegistryEntry:
    base = RegistryEntry(
        document_id=DOC_ID,
        issuer="กรมพัฒนาธุรกิจการค้า (TH-JUR 0994000000000)",
        document_type="business-registration",
        title="หนังสือรับรองการจดทะเบียน",
        subject_reference="TH-JUR 0105556000000",
        sha256_hex="ab" * 32,
        registered_at=datetime(2026, 11, 25, 4, 51, tzinfo=UTC),
        valid_from=datetime(2026, 11, 25, tzinfo=UTC),
        valid_until=None,
        status=status,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def registered(
    status: RegistryStatus = RegistryStatus.REGISTERED, **changes: object
) -> RegistryFinding:
    return RegistryFinding(
        status=status, entry=entry(status, **changes), proof=ProofCheck.VERIFIED, tree_size=7
    )


def report(
    verdict: Verdict = Verdict.VALID,
    *,
    signatures: tuple[SignatureFinding, ...] | None = None,
    registry: RegistryFinding | None = None,
) -> VerificationReport:
    sigs = (signature(verdict),) if signatures is None else signatures
    return VerificationReport(
        file_name="certificate.pdf",
        file_size=123456,
        sha256_hex="ab" * 32,
        checked_at=NOW,
        signatures_verdict=verdict,
        signatures_indication=sigs[0].indication if sigs else "",
        signatures_sub_indication=sigs[0].sub_indication if sigs else "",
        signatures=sigs,
        registry=registry or RegistryFinding(status=RegistryStatus.NOT_REGISTERED),
        etsi_xml=b'<?xml version="1.0"?><ValidationReport xmlns="http://uri.etsi.org/19102/v1.2.1#"/>',
    )


@dataclasses.dataclass
class FakeTrustServices:
    """Answers with whatever the test put in; records what it was asked."""

    next_report: VerificationReport = dataclasses.field(default_factory=report)
    raise_on_verify: Exception | None = None
    documents: dict[str, RegistryFinding] = dataclasses.field(default_factory=dict)
    registry_down: bool = False
    ready: dict[str, bool] = dataclasses.field(
        default_factory=lambda: {"signing": True, "registry": True}
    )
    received: list[tuple[bytes, str, str]] = dataclasses.field(default_factory=list)

    def verify(self, pdf: bytes, file_name: str, *, language: str) -> VerificationReport:
        self.received.append((pdf, file_name, language))
        if self.raise_on_verify is not None:
            raise self.raise_on_verify
        return dataclasses.replace(self.next_report, file_name=file_name, file_size=len(pdf))

    def registry_entry(self, document_id: str) -> RegistryFinding:
        if self.registry_down:
            raise PeerUnavailable("registry down")
        if document_id not in self.documents:
            raise DocumentNotFound(document_id)
        return self.documents[document_id]

    def peers_ready(self) -> dict[str, bool]:
        return dict(self.ready)


@pytest.fixture
def services() -> FakeTrustServices:
    return FakeTrustServices()


MAX_UPLOAD = 64 * 1024


@pytest.fixture
def client(services: FakeTrustServices) -> Iterator[TestClient]:
    config = PortalConfig(
        max_upload_bytes=MAX_UPLOAD,
        seal_key=b"k" * 32,
        report_ttl=timedelta(hours=1),
        fonts=FONTS,
        public_url="https://verify.example.go.th",
    )
    app = create_app(services, config, FixedClock(NOW))
    # over HTTPS, as in production (the language cookie is Secure there)
    with TestClient(
        app, base_url="https://testserver", raise_server_exceptions=False
    ) as test_client:
        yield test_client


def upload(
    client: TestClient, content: bytes = MINIMAL_PDF, name: str = "certificate.pdf", **fields: str
):  # type: ignore[no-untyped-def]
    return client.post(
        "/verify", files={"file": (name, content, "application/pdf")}, data=fields or None
    )


__all__ = [
    "DOC_ID",
    "FONTS",
    "MAX_UPLOAD",
    "MINIMAL_PDF",
    "NEWER_ID",
    "NOW",
    "SIGNER_TH",
    "UNKNOWN_ID",
    "DocumentRejected",
    "FakeTrustServices",
    "Path",
    "RejectionReason",
    "entry",
    "registered",
    "report",
    "signature",
    "upload",
]
