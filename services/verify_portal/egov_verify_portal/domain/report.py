"""What the portal shows: a validation report in the words a relying party reads.

The portal holds no logic of validation: the signing service validates signatures and the
registry says what was issued. These values are the portal's view of their answers, built by
``adapters.peers`` from the gRPC responses, and read by the HTML pages and the PDF summary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


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

    @property
    def verdict(self) -> Verdict:
        """The overall answer: the signatures' verdict, overruled by the registry.

        A revoked registry entry makes the document not valid whatever its signatures say; a
        superseded one, an unreachable registry, or a registry claim whose inclusion proof
        fails, means we cannot tell. Without a signature (document time-stamps only) the
        document cannot be valid.
        """
        if self.registry.status is RegistryStatus.REVOKED:
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
