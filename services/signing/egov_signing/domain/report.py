"""The validation report: what a relying party learns about a signed PDF.

Indications follow ETSI EN 319 102-1 clause 5.1.3 (TOTAL_PASSED, TOTAL_FAILED, INDETERMINATE)
with its sub-indications; ``ILLEGAL_MODIFICATIONS`` is our name for changes after signing that
the difference analysis does not allow (EN 319 102-1 has no code for PDF incremental updates).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Coverage",
    "DocumentVerdict",
    "Indication",
    "PadesLevel",
    "RevocationStatus",
    "SignatureKind",
    "SignatureReport",
    "SignerIdentity",
    "ValidationReport",
    "document_verdict",
]


class Indication(enum.StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class SignatureKind(enum.StrEnum):
    SIGNATURE = "SIGNATURE"
    DOCUMENT_TIMESTAMP = "DOCUMENT_TIMESTAMP"


class Coverage(enum.StrEnum):
    #: the signature's /ByteRange covers every byte of the file
    ENTIRE_FILE = "ENTIRE_FILE"
    #: it covers its whole revision; later incremental updates exist (see modifications)
    ENTIRE_REVISION = "ENTIRE_REVISION"
    #: it covers less than its revision (gaps, tail, one range): never acceptable
    PARTIAL = "PARTIAL"
    UNKNOWN = "UNKNOWN"


class PadesLevel(enum.StrEnum):
    """ETSI EN 319 142-1 baseline level reached (NONE: not a PAdES signature or not valid)."""

    NONE = "NONE"
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class RevocationStatus(enum.StrEnum):
    """What is known of the signer certificate's revocation at the validation time."""

    #: checked against revocation data (hard-fail path validation) and not revoked
    GOOD = "GOOD"
    REVOKED = "REVOKED"
    #: nothing could be checked: the certificate names no CRL distribution point and no OCSP
    #: responder, or it is itself a trust anchor (trusted by configuration, never checked)
    NOT_CHECKED = "NOT_CHECKED"
    #: not established (soft-fail validation, or the path did not validate)
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed, from the signing certificate; the national identifier is masked."""

    common_name: str
    organisation: str
    #: ``serialNumber`` / ``organizationIdentifier``, digits masked (PNOTH-1-2345-xxxxx-xx-1)
    identifier_masked: str
    issuer: str
    certificate_sha256: str
    certificate_serial: str
    not_before: datetime | None
    not_after: datetime | None


@dataclass(frozen=True)
class SignatureReport:
    """One signature dictionary (signature or document timestamp) found in the file."""

    field_name: str
    kind: SignatureKind
    subfilter: str
    indication: Indication
    sub_indication: str | None
    #: human readable reasons, most important first
    reasons: tuple[str, ...]
    signer: SignerIdentity | None = None
    #: the time the signer claims (signingTime attribute or /M)
    claimed_signing_time: datetime | None = None
    #: the time in a valid signature timestamp (or the document timestamp's own time)
    timestamp_time: datetime | None = None
    timestamp_trusted: bool = False
    #: digest over the /ByteRange matches the signed messageDigest
    intact: bool = False
    #: the cryptographic signature value verifies
    valid: bool = False
    trusted: bool = False
    revoked: bool = False
    #: the signer certificate names a CRL distribution point or an OCSP responder (RFC 5280
    #: 4.2.1.13, 4.2.2.1): without either its revocation cannot be checked; None without a
    #: usable signer certificate
    signer_revocation_service_declared: bool | None = None
    #: the signer certificate is one of the configured trust anchors (no path above it)
    signer_is_trust_anchor: bool = False
    revocation_status: RevocationStatus = RevocationStatus.UNKNOWN
    #: the document security store holds revocation data for the signer certificate: an OCSP
    #: response for it or a CRL of its issuer (what PAdES B-LT needs, EN 319 142-1)
    signer_revocation_data_in_dss: bool = False
    #: every CA certificate of the validated path below the trust anchor that names a
    #: revocation service has revocation data in the DSS as well; None when no path validated
    authorities_revocation_data_in_dss: bool | None = None
    #: when revoked: the revocation time and the RFC 5280 reason name
    revoked_at: datetime | None = None
    revocation_reason: str = ""
    coverage: Coverage = Coverage.UNKNOWN
    #: 0-based revision the signature belongs to, and the file's number of revisions
    signed_revision: int | None = None
    #: bytes of the file after the end of this signature's /ByteRange
    bytes_after_signed_range: int = 0
    #: pyHanko modification level of the later revisions (NONE, LTA_UPDATES, FORM_FILLING, ...)
    modification_level: str | None = None
    #: DocMDP P value when this is a certification signature
    certification_level: int | None = None
    docmdp_ok: bool | None = None
    #: subject names from the signer up to the trust anchor
    certificate_path: tuple[str, ...] = ()
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    pades_level: PadesLevel = PadesLevel.NONE
    #: DER of the signer certificate (ETSI TS 119 102-2 validation objects)
    signer_certificate_der: bytes = b""
    signature_value_digest_sha256: str = ""


@dataclass(frozen=True)
class ValidationReport:
    """The whole document: one entry per signature dictionary, in signing order."""

    document_sha256: str
    document_size: int
    validation_time: datetime
    revisions: int
    signatures: tuple[SignatureReport, ...]
    #: revisions appended after the last signed revision (not covered by any signature)
    unsigned_revisions_after_last_signature: int
    #: bytes after the end of the last signature's /ByteRange (a document time-stamp is not a
    #: signature: it covers what precedes it but approves none of it); the file's size when
    #: there is no signature
    bytes_after_last_signature: int
    #: empty signature fields (not signed) by name
    empty_signature_fields: tuple[str, ...] = ()
    #: document metadata entries (/Title, XMP title ...) changed after the last signature
    metadata_changed_after_last_signature: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    #: bytes at the end of the file after the last revision the PDF reader found (after its
    #: %%EOF line), whitespace aside: content that no revision accounts for, which this verifier
    #: did not read and other readers may show (an update appended without %%EOF)
    bytes_after_last_revision: int = 0
    #: checks that could not be completed (a limit was reached), each with its reason: what
    #: they would have looked for is not known to be absent
    incomplete_checks: tuple[str, ...] = ()

    @property
    def has_signature(self) -> bool:
        """At least one signature; document time-stamps alone say nothing about who issued it
        (anyone can have any PDF time-stamped)."""
        return any(s.kind is SignatureKind.SIGNATURE for s in self.signatures)

    @property
    def indication(self) -> Indication:
        """Worst indication of all signatures and time-stamps; a document without signatures
        (none at all, or document time-stamps only) cannot pass."""
        found = {s.indication for s in self.signatures}
        if Indication.TOTAL_FAILED in found:
            return Indication.TOTAL_FAILED
        if Indication.INDETERMINATE in found or not self.has_signature:
            return Indication.INDETERMINATE
        return Indication.TOTAL_PASSED

    @property
    def sub_indication(self) -> str | None:
        worst = self.indication
        for sig in self.signatures:
            if sig.indication == worst:
                return sig.sub_indication
        return "NO_SIGNATURE" if not self.has_signature else None


#: pyHanko modification levels of validation material (DSS, document time-stamps); whether
#: such an update is allowed after this signature (DocMDP P=1) is the signature's own verdict
_AFTER_LAST_ALLOWED = {"NONE", "LTA_UPDATES"}


@dataclass(frozen=True)
class DocumentVerdict:
    indication: Indication
    sub_indication: str | None
    reason: str
    unsigned_content_after_last_signature: bool


def _last_signature(report: ValidationReport) -> SignatureReport | None:
    """The signature (not a document time-stamp) of the latest revision, if any."""
    signatures = [
        s
        for s in report.signatures
        if s.kind is SignatureKind.SIGNATURE and s.signed_revision is not None
    ]
    return max(signatures, key=lambda s: s.signed_revision or 0) if signatures else None


def document_verdict(
    report: ValidationReport, *, registry_revoked: bool = False
) -> DocumentVerdict:
    """The document's overall verdict: TOTAL_PASSED only when every signature passed, nothing
    but validation material follows the last signature, the file holds nothing after its last
    revision, every check could be completed, and the registry has not revoked it.

    What follows the last signature is judged from that signature, not from a later document
    time-stamp: a time-stamp proves that the bytes it covers existed at its time, and nothing
    about who made them, so it covers changes after the last signature without approving them
    (pyHanko's modification level of the last signature takes in every later revision, the
    time-stamps' included)."""
    last = _last_signature(report)
    unsigned_after = (
        (
            last is not None
            and report.bytes_after_last_signature > 0
            and (
                last.modification_level not in _AFTER_LAST_ALLOWED
                # e.g. a metadata revision after a no-changes certification: pyHanko's level
                # says LTA_UPDATES, but it is not validation material
                or last.sub_indication == "ILLEGAL_MODIFICATIONS"
            )
        )
        or bool(report.metadata_changed_after_last_signature)
        or report.bytes_after_last_revision > 0
    )
    indication, sub = report.indication, report.sub_indication
    if not report.signatures:
        reason = "the document has no signature"
    elif not report.has_signature and sub == "NO_SIGNATURE":
        reason = "the document has only document time-stamps and no signature"
    elif indication is Indication.TOTAL_PASSED:
        reason = "every signature is intact, valid and trusted"
    else:
        worst = next(s for s in report.signatures if s.indication is indication)
        reason = f"signature '{worst.field_name}': {worst.reasons[0] if worst.reasons else sub}"
    if registry_revoked and indication is not Indication.TOTAL_FAILED:
        indication, sub = Indication.TOTAL_FAILED, "REVOKED"
        reason = "the issuer revoked this document in the registry"
    elif report.bytes_after_last_revision > 0 and indication is Indication.TOTAL_PASSED:
        # As for content appended after the last signature, and more so: bytes no revision
        # accounts for (ISO 32000-1 7.5.5: a file ends with its last revision's %%EOF) were not
        # read here, yet another reader may show them (an update appended without %%EOF).
        # INDETERMINATE, not TOTAL_FAILED: the signatures themselves verify, and some writers
        # pad files with junk; what a reader shows cannot be said to be what was signed.
        indication, sub = Indication.INDETERMINATE, None
        reason = (
            f"the file holds {report.bytes_after_last_revision} bytes after the end of its"
            " last revision (no %%EOF closes them): other PDF readers may show content there"
            " that no signature covers and that was not verified"
        )
    elif unsigned_after and indication is Indication.TOTAL_PASSED:
        indication, sub = Indication.INDETERMINATE, None
        reason = "content was appended after the last signature and no signature covers it"
        if report.metadata_changed_after_last_signature:
            changed = ", ".join(report.metadata_changed_after_last_signature)[:200]
            reason = f"the document's metadata was changed after the last signature ({changed})"
    elif report.incomplete_checks and indication is Indication.TOTAL_PASSED:
        # EN 319 102-1 INDETERMINATE: the information available does not allow the document
        # to be said to pass (nor to fail)
        indication, sub = Indication.INDETERMINATE, None
        reason = f"a check could not be completed: {report.incomplete_checks[0]}"
    return DocumentVerdict(indication, sub, reason, unsigned_after)
