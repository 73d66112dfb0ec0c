"""What the portal shows: a validation report in the words a relying party reads.

The portal holds no logic of validation: the signing service validates signatures and the
registry says what was issued. These values are the portal's view of their answers, built by
``adapters.peers`` from the gRPC responses, and read by the HTML pages and the PDF summary.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

#: The registry's document ids: ``DOC-`` and 26 Crockford base32 characters (the registry's
#: ``domain.rules.check_document_id``; the portal may not import another service).
DOCUMENT_ID = re.compile(r"DOC-[0-9A-HJKMNP-TV-Z]{26}")
#: Longest text from a certificate or the registry that the page and the summary show.
MAX_SHOWN_CHARS = 200
_ELLIPSIS = "…"


def is_document_id(text: str) -> bool:
    """True if ``text`` is a document id as the registry issues them."""
    return DOCUMENT_ID.fullmatch(text) is not None


def clipped(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut.

    The cut never separates a Thai vowel or tone mark (a combining mark) from its letter.
    """
    if len(text) <= limit:
        return text
    cut = max(limit - len(_ELLIPSIS), 1)
    while cut > 1 and unicodedata.category(text[cut]).startswith("M"):
        cut -= 1
    return text[:cut].rstrip() + _ELLIPSIS


class Verdict(enum.StrEnum):
    """The answer a person reads at a glance (ETSI EN 319 102-1 main indications)."""

    VALID = "valid"  # TOTAL_PASSED
    INVALID = "invalid"  # TOTAL_FAILED
    INDETERMINATE = "indeterminate"  # INDETERMINATE: cannot tell

    @classmethod
    def from_indication(cls, indication: str) -> Verdict:
        """Map an EN 319 102-1 indication name; anything unknown is "cannot tell"."""
        return {
            "TOTAL_PASSED": cls.VALID,
            "PASSED": cls.VALID,
            "TOTAL_FAILED": cls.INVALID,
            "FAILED": cls.INVALID,
        }.get(indication.upper().removeprefix("INDICATION_"), cls.INDETERMINATE)


class RegistryStatus(enum.StrEnum):
    """What the registry says about the document."""

    REGISTERED = "registered"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    NOT_REGISTERED = "not_registered"
    UNAVAILABLE = "unavailable"  # the registry could not be asked


class ProofCheck(enum.StrEnum):
    """The transparency log's inclusion proof, checked by the portal's back end (RFC 9162)."""

    VERIFIED = "verified"
    FAILED = "failed"
    NOT_AVAILABLE = "not_available"


@dataclass(frozen=True, slots=True)
class SignatureFinding:
    """One signature (or document time-stamp) of the file, as the signing service judged it."""

    field_name: str
    is_document_timestamp: bool
    verdict: Verdict
    indication: str
    sub_indication: str
    reason: str
    signer_name: str
    signer_organisation: str
    signer_identifier_masked: str
    #: The time the signature existed: a trusted time-stamp's time when ``time_is_trusted``,
    #: otherwise the time the signer's software claimed (not evidence).
    signed_at: datetime | None
    time_is_trusted: bool
    covers_whole_document: bool
    coverage: str
    modifications: str
    modifications_allowed: bool
    certificate_subject: str
    certificate_issuer: str
    certificate_valid_from: datetime | None
    certificate_valid_until: datetime | None
    certificate_trusted: bool
    revocation_status: str
    pades_level: str
    certified: bool


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """A document as the registry recorded it."""

    document_id: str
    issuer: str
    document_type: str
    title: str
    subject_reference: str
    sha256_hex: str
    registered_at: datetime | None
    valid_from: datetime | None
    valid_until: datetime | None
    status: RegistryStatus
    #: The issuer's free text, and the reason code (``ISSUED_IN_ERROR``, ``FRAUD`` ...).
    revocation_reason: str = ""
    revocation_reason_code: str = ""
    revoked_at: datetime | None = None
    superseded_by: str = ""


@dataclass(frozen=True, slots=True)
class RegistryFinding:
    """The registry's answer for a document, with the inclusion proof checked here."""

    status: RegistryStatus
    entry: RegistryEntry | None = None
    proof: ProofCheck = ProofCheck.NOT_AVAILABLE
    proof_detail: str = ""
    tree_size: int = 0


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """Everything the report page, the XML download and the PDF summary show."""

    file_name: str
    file_size: int
    sha256_hex: str
    checked_at: datetime
    signatures_verdict: Verdict
    signatures_indication: str
    signatures_sub_indication: str
    signatures: tuple[SignatureFinding, ...]
    registry: RegistryFinding
    #: ETSI TS 119 102-2 validation report from the signing service (empty if it sent none).
    etsi_xml: bytes = b""
    #: Problems with the document as a whole, one sentence each, from the signing service.
    notes: tuple[str, ...] = field(default=())
    #: Bytes follow the last signed revision and no signature covers them.
    unsigned_content_after_last_signature: bool = False
    #: The registry document the visitor expects this file to be (the QR page's comparison),
    #: a well-formed id (``is_document_id``) or empty. Sealed with the rest of the report, so
    #: the downloads and the re-shown page compare the same way the first page did.
    expected_document_id: str = ""

    @property
    def matches_expected(self) -> bool | None:
        """Whether the file is the registered document ``expected_document_id``.

        None when no document was expected, or when the registry could not be asked (then
        the verdict is "cannot tell" anyway).
        """
        if not self.expected_document_id:
            return None
        entry = self.registry.entry
        if entry is None and self.registry.status is RegistryStatus.UNAVAILABLE:
            return None
        return entry is not None and entry.document_id == self.expected_document_id

    @property
    def verdict(self) -> Verdict:
        """The overall answer, the one the page, the XML and the PDF summary all show.

        The signatures' verdict, overruled by the registry: a revoked registry entry makes
        the document not valid whatever its signatures say, and so does a file that is not
        the registered document the visitor expected; a superseded entry, an unreachable
        registry, or a registry claim whose inclusion proof fails, means we cannot tell.
        Without a signature (document time-stamps only) the document cannot be valid.
        """
        if self.registry.status is RegistryStatus.REVOKED or self.matches_expected is False:
            return Verdict.INVALID
        if self.signatures_verdict is not Verdict.VALID:
            return self.signatures_verdict
        if self.main_signer is None:
            return Verdict.INDETERMINATE
        if self.registry.status in (RegistryStatus.SUPERSEDED, RegistryStatus.UNAVAILABLE):
            # Fail closed: a registry that cannot be asked may hold a revocation.
            return Verdict.INDETERMINATE
        if (
            self.registry.status is RegistryStatus.REGISTERED
            and self.registry.proof is ProofCheck.FAILED
        ):
            return Verdict.INDETERMINATE
        return Verdict.VALID

    @property
    def main_signer(self) -> SignatureFinding | None:
        """The first real signature (not a document time-stamp), if any."""
        return next((s for s in self.signatures if not s.is_document_timestamp), None)


def etsi_xml_with_verdict(report: VerificationReport) -> bytes:
    """The signing service's ETSI TS 119 102-2 report with the portal's verdict in a comment.

    That report judges the signatures only; the verdict the page and the PDF summary show
    also weighs the registry and the comparison with the expected document. The comment
    goes before the root element (after the XML declaration), so the report itself is
    unchanged; it holds only enumerated values and a well-formed document id.
    """
    said = [f'verdict="{report.verdict.value}"', f'registry="{report.registry.status.value}"']
    if report.matches_expected is not None:
        said.append(f'expected_document_id="{report.expected_document_id}"')
        said.append(f'is_expected_document="{"yes" if report.matches_expected else "no"}"')
    comment = (
        "<!-- egov-trust verify portal: "
        + " ".join(said)
        + "; the validation report below judges the signatures only -->"
    ).encode()
    xml = report.etsi_xml
    if xml.startswith(b"<?xml"):
        declaration_end = xml.find(b"?>") + 2
        if declaration_end > 1:
            return xml[:declaration_end] + b"\n" + comment + xml[declaration_end:]
    return comment + b"\n" + xml
