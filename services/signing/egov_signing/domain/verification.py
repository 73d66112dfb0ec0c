"""Verify every signature and document timestamp of a PDF into a :class:`ValidationReport`.

pyHanko does the cryptography, the certificate path and the difference analysis; this module is
stricter than its defaults (DESIGN.md "Verification fails closed"):

- every filled signature field appears in the report, including one whose SubFilter is unknown or
  whose CMS cannot be parsed (TOTAL_FAILED / FORMAT_FAILURE);
- a /ByteRange that is not the standard [0 a b c] around its /Contents is a FORMAT_FAILURE
  before anything is hashed, one that does not cover its whole revision is one too, and bytes
  after the last signed revision are reported rather than folded into "covers the entire file";
- bytes after the last revision the reader found (an update appended without %%EOF) are
  reported, and the document cannot pass (report.document_verdict);
- a trust anchor that is not a CA certificate vouches for its own signatures only;
- a signer certificate whose extendedKeyUsage names no document-signing purpose (a TSA's or an
  OCSP responder's) signs no document (CHAIN_CONSTRAINTS_FAILURE);
- an exception inside pyHanko becomes a verdict with a reason, never an error status;
- the work is bounded: revisions (DocumentLimits.max_revisions), candidate certificates in the
  path search (max_path_candidates), objects read in the search for stray signature
  dictionaries (max_objects_scanned), and the deadline is checked inside each of those loops.

pyHanko's PDF validator checks revocation at the validation time only; a signer certificate it
finds revoked is judged again by the signature's proof of existence (EN 319 102-1 5.5, 5.6):
pyHanko's validation with time, on the same trust anchors and revocation data, passes a
signature whose trusted time-stamp precedes the revocation, unless the revocation data dates the
key's compromise (invalidityDate) at or before the time-stamp.

Mapping to ETSI EN 319 102-1 indications, first match wins (same order as the third-party corpus
in shared/testdata): HASH_FAILURE, SIG_CRYPTO_FAILURE, FORMAT_FAILURE (unreadable CMS or partial
coverage), ILLEGAL_MODIFICATIONS (modification level OTHER or DocMDP violated), the certificate
path's sub-indication, else TOTAL_PASSED.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from asn1crypto import cms, x509
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from egov_common.clock import Clock, SystemClock
from egov_common.errors import DeadlineExceeded, InvalidArgument
from egov_common.logging import mask_identifier, mask_text
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.metadata.xmp_xml import parse_xmp
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed, AdESSubIndic
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import dss as pyhanko_dss
from pyhanko.sign.validation.ades import ades_with_time_validation
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.policy_decl import (
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.authority import AuthorityWithCert, TrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec, ValidationDataHandlers
from pyhanko_certvalidator.errors import InvalidCertificateError
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.util import get_declared_revinfo

from . import aio
from .pdf_input import (
    PDF_TOO_MANY_REVISIONS,
    PDF_TOO_MANY_SIGNATURES,
    Deadline,
    DocumentLimits,
    DocumentScan,
    PdfSource,
    as_stream,
    decompression_refused,
    open_untrusted_pdf,
    scan_document,
)
from .report import (
    Coverage,
    Indication,
    PadesLevel,
    RevocationStatus,
    SignatureKind,
    SignatureReport,
    SignerIdentity,
    ValidationReport,
)
from .stamp import name_values

__all__ = [
    "DocumentVerifier",
    "RevocationMode",
    "TrustAnchors",
]

_log = logging.getLogger(__name__)

_SIGNATURE_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}
_TIMESTAMP_SUBFILTERS = {"/ETSI.RFC3161"}
_PADES_SUBFILTER = "/ETSI.CAdES.detached"
_SEMANTICS_ID = re.compile(r"^([A-Z]{3}[A-Z]{2}[-:])(.+)$")  # EN 319 412-1 5.1.3: PNOTH-, NTRTH-


class RevocationMode(enum.StrEnum):
    """pyhanko-certvalidator revocation modes."""

    #: revocation status required for every certificate that declares an OCSP/CRL location
    HARD_FAIL = "hard-fail"
    #: missing revocation data is tolerated; a revoked certificate still fails
    SOFT_FAIL = "soft-fail"


class TrustAnchors:
    """Parsed trust anchor certificates, kept for the life of the verifier."""

    def __init__(self, certificates: Iterable[bytes]) -> None:
        self.certificates: tuple[x509.Certificate, ...] = tuple(
            x509.Certificate.load(_pem_to_der(c)) for c in certificates
        )
        self._encodings = frozenset(c.dump() for c in self.certificates)
        #: anchors that are not CA certificates (an e-seal trusted directly): trusted for
        #: their own signatures, never as the issuer of another certificate
        self.non_ca: tuple[x509.Certificate, ...] = tuple(
            c for c in self.certificates if not _may_issue_certificates(c)
        )

    def __contains__(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` (the very certificate, by its DER) is one of the anchors."""
        return cert.dump() in self._encodings

    @staticmethod
    def certificates_in(blob: bytes) -> list[bytes]:
        """The certificates of a PEM bundle (or ``[blob]`` for one DER certificate)."""
        return _split_pem(blob)

    @classmethod
    def from_pem_files(cls, paths: Iterable[str]) -> TrustAnchors:
        blobs = []
        for path in paths:
            with open(path, "rb") as fh:
                blobs.extend(_split_pem(fh.read()))
        return cls(blobs)


@dataclass(frozen=True)
class _SigContext:
    """What the validation of one signature needs from the document as a whole."""

    reader: PdfFileReader
    file_size: int
    validation_time: datetime
    revocation_mode: RevocationMode
    dss_certs: tuple[x509.Certificate, ...]
    dss_ocsps: tuple[asn1_ocsp.OCSPResponse, ...]
    dss_crls: tuple[asn1_crl.CertificateList, ...]
    deadline: Deadline


class DocumentVerifier:
    """Verifies PDFs against configured trust anchors. Thread-safe; one per process is enough.

    ``fetcher_backend`` enables on-line revocation fetching (use one restricted to our own OCSP
    and CRL URLs); ``None`` means no network: only revocation data embedded in the file counts.
    """

    def __init__(
        self,
        trust_anchors: TrustAnchors,
        *,
        limits: DocumentLimits | None = None,
        revocation_mode: RevocationMode = RevocationMode.HARD_FAIL,
        fetcher_backend: FetcherBackend | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._anchors = trust_anchors
        self._limits = limits or DocumentLimits()
        self._revocation_mode = revocation_mode
        self._fetcher_backend = fetcher_backend
        self._clock = clock or SystemClock()

    def verify(
        self,
        pdf: PdfSource,
        *,
        validation_time: datetime | None = None,
        revocation_mode: RevocationMode | None = None,
        deadline_seconds: float | None = None,
    ) -> ValidationReport:
        """Validate every signature of ``pdf`` at ``validation_time`` (default: now).

        Raises InvalidArgument (NOT_A_PDF, PDF_MALFORMED, PDF_ENCRYPTED, PDF_TOO_LARGE,
        PDF_TOO_MANY_PAGES, PDF_TOO_MANY_REVISIONS, PDF_TOO_MANY_SIGNATURES,
        PDF_DECOMPRESSION_LIMIT) for a document that cannot be examined and DeadlineExceeded
        past the configured deadline (checked inside every loop whose length the document
        decides, pyHanko's certificate path search included); every problem with
        a signature itself is a verdict in the report. ``deadline_seconds`` (e.g. what is left of
        the caller's gRPC deadline) shortens the configured budget. ``pdf`` may be a seekable
        stream (a spooled upload): it is read in pieces, never whole.
        """
        budget = self._limits.deadline_seconds
        if deadline_seconds is not None:
            budget = min(budget, deadline_seconds)
        deadline = Deadline(budget)
        deadline.check()
        stream = as_stream(pdf)
        reader = open_untrusted_pdf(stream, self._limits)
        if reader.xrefs.total_revisions > self._limits.max_revisions:
            # pyHanko's difference analysis and the metadata comparison take time that grows
            # with the square of the revisions: refused before either starts
            raise InvalidArgument(
                PDF_TOO_MANY_REVISIONS,
                f"the PDF has more than {self._limits.max_revisions} revisions"
                " (incremental updates)",
                metadata={"max_revisions": str(self._limits.max_revisions)},
            )
        # digest, size and the raw /ByteRange count in one chunked pass
        scan = scan_document(stream, b"/ByteRange")
        trailing = _bytes_after_last_revision(stream, scan.size)
        when = validation_time or self._clock.now()
        try:
            report = aio.run(
                self._verify(reader, scan, when, revocation_mode or self._revocation_mode, deadline)
            )
        except PdfDecodeLimitError as err:
            raise decompression_refused(err) from err
        if not trailing:
            return report
        return dataclasses.replace(
            report,
            bytes_after_last_revision=trailing,
            notes=(
                *report.notes,
                f"{trailing} bytes follow the end of the last revision (no %%EOF closes them):"
                " they were not read",
            ),
        )

    async def _verify(
        self,
        reader: PdfFileReader,
        scan: DocumentScan,
        when: datetime,
        mode: RevocationMode,
        deadline: Deadline,
    ) -> ValidationReport:
        filled, empty = _signature_fields(reader)
        if len(filled) > self._limits.max_signatures:
            raise InvalidArgument(
                PDF_TOO_MANY_SIGNATURES,
                f"the PDF has more than {self._limits.max_signatures} signatures",
                metadata={"max_signatures": str(self._limits.max_signatures)},
            )
        certs, ocsps, crls = _read_dss(reader)
        ctx = _SigContext(reader, scan.size, when, mode, certs, ocsps, crls, deadline)
        reports: list[SignatureReport] = []
        for name, sig_field in filled:
            deadline.check()
            reports.append(await self._verify_one(ctx, name, sig_field))
        unattached, unattached_incomplete = _unattached_signatures(
            reader, filled, scan, max_objects=self._limits.max_objects_scanned, deadline=deadline
        )
        reports.extend(unattached)
        reports.sort(key=lambda r: (r.signed_revision is None, r.signed_revision or 0))
        stamped = {
            r.signed_revision
            for r in reports
            if r.kind is SignatureKind.DOCUMENT_TIMESTAMP and r.signed_revision is not None
        }
        reports = [_enforce_no_changes_certification(reader, r, stamped, deadline) for r in reports]
        reports = _assign_pades_levels(reports)
        revisions = reader.xrefs.total_revisions
        signed = [r.signed_revision for r in reports if r.signed_revision is not None]
        # a document time-stamp covers what precedes it but approves none of it
        approvals = [
            r
            for r in reports
            if r.kind is SignatureKind.SIGNATURE and r.signed_revision is not None
        ]
        metadata_after = _metadata_changed_after_last_signature(reader, reports, deadline)
        incomplete = [unattached_incomplete] if unattached_incomplete else []
        notes = []
        if not reports:
            notes.append("the document has no signature")
        elif all(r.kind is SignatureKind.DOCUMENT_TIMESTAMP for r in reports):
            notes.append("the document has document time-stamps only and no signature")
        notes.extend(incomplete)
        return ValidationReport(
            document_sha256=scan.sha256.hex(),
            document_size=scan.size,
            validation_time=when,
            revisions=revisions,
            signatures=tuple(reports),
            unsigned_revisions_after_last_signature=(
                revisions - 1 - max(signed) if signed else revisions
            ),
            bytes_after_last_signature=(
                min(r.bytes_after_signed_range for r in approvals) if approvals else scan.size
            ),
            empty_signature_fields=tuple(empty),
            metadata_changed_after_last_signature=tuple(metadata_after),
            notes=tuple(notes),
            incomplete_checks=tuple(incomplete),
        )

    async def _verify_one(
        self, ctx: _SigContext, name: str, sig_field: generic.DictionaryObject
    ) -> SignatureReport:
        label = _field_label(name)
        try:
            sig_obj = sig_field.get_object()["/V"].get_object()  # type: ignore[no-untyped-call]
            subfilter = str(sig_obj.get("/SubFilter", ""))
            declared_type = str(sig_obj.get("/Type", "/Sig"))
        except Exception as err:
            return _format_failure(label, SignatureKind.SIGNATURE, "", f"unreadable: {err}")
        kind = (
            SignatureKind.DOCUMENT_TIMESTAMP
            if declared_type == "/DocTimeStamp"
            else SignatureKind.SIGNATURE
        )
        allowed = (
            _TIMESTAMP_SUBFILTERS
            if kind is SignatureKind.DOCUMENT_TIMESTAMP
            else (_SIGNATURE_SUBFILTERS)
        )
        bytes_after = _bytes_after_range(sig_obj, ctx.file_size)
        if subfilter not in allowed:
            return _format_failure(
                label,
                kind,
                subfilter,
                f"unsupported SubFilter {subfilter or '(none)'} for {declared_type}",
                bytes_after=bytes_after,
            )
        problem = _byte_range_problem(sig_obj, ctx.reader.stream, ctx.file_size)
        if problem is not None:
            return _format_failure(
                label,
                kind,
                subfilter,
                "the /ByteRange is not of the standard form [0 a b c] around the signature's"
                f" /Contents (ISO 32000-1 12.8.1): {problem}; nothing was hashed",
                bytes_after=bytes_after,
            )
        try:
            embedded = EmbeddedPdfSignature(ctx.reader, sig_field, name)
        except PdfDecodeLimitError:
            raise
        except Exception as err:
            return _format_failure(
                label,
                kind,
                subfilter,
                f"the signature container cannot be read: {err}",
                bytes_after=bytes_after,
            )
        base = {
            "field_name": label,
            "kind": kind,
            "subfilter": subfilter.lstrip("/"),
            "bytes_after_signed_range": bytes_after,
            "signed_revision": embedded.signed_revision,
        }
        try:
            base["certification_level"] = (
                embedded.docmdp_level.value if embedded.docmdp_level is not None else None
            )
            base["signer"] = _signer_identity(embedded.signer_cert)
            base["signer_certificate_der"] = embedded.signer_cert.dump()
            base["signer_revocation_service_declared"] = _declares_revocation_service(
                embedded.signer_cert
            )
            base["signer_is_trust_anchor"] = embedded.signer_cert in self._anchors
            base["signature_value_digest_sha256"] = hashlib.sha256(
                embedded.signer_info["signature"].native
            ).hexdigest()
        except Exception as err:
            return _format_failure(
                label,
                kind,
                subfilter,
                f"no usable signer certificate: {err}",
                bytes_after=bytes_after,
                signed_revision=embedded.signed_revision,
            )
        base["signer_revocation_data_in_dss"] = _has_revocation_data_for(
            embedded.signer_cert,
            self._known_certificates(ctx, embedded),
            ocsps=ctx.dss_ocsps,
            crls=ctx.dss_crls,
        )
        # Embedded revocation data first (what LT/LTA documents carry, and what the corpus
        # verdicts assume); on-line fetching from our own services only when that leaves the
        # signature undecided (the fetched answer knows at least as much).
        report = await self._validate(ctx, embedded, kind, base, fetch=False)
        if (
            report.indication is Indication.INDETERMINATE
            and self._fetcher_backend is not None
            # more data cannot make fewer candidate paths
            and not report.reasons[0].startswith(_PATH_SEARCH_STOPPED)
        ):
            report = await self._validate(ctx, embedded, kind, base, fetch=True)
        if report.signer_is_trust_anchor:
            report = _trust_anchor_signer(report, embedded.signer_cert, ctx.validation_time)
        elif self._anchors.non_ca and not report.certificate_path:
            report = self._issued_by_non_ca_anchor(report, embedded)
        # what revocation checking found stands whatever the key's purposes are
        revocation_status = _revocation_status(report, ctx.revocation_mode)
        report = _refuse_other_key_purposes(report, embedded.signer_cert)
        return dataclasses.replace(report, revocation_status=revocation_status)

    def _issued_by_non_ca_anchor(
        self, report: SignatureReport, embedded: EmbeddedPdfSignature
    ) -> SignatureReport:
        """Why no path was found, when the signature's certificates lead to a trust anchor that
        is not a CA certificate: the path builder does not take such an anchor for an issuer
        (see :class:`_PathTrustManager`), so its key holder cannot make certificates the
        verifier trusts; say so rather than "no chain found"."""
        if report.indication is not Indication.INDETERMINATE:
            return report
        try:
            candidates = [embedded.signer_cert, *embedded.other_embedded_certs]
        except Exception:  # the signer certificate was read before: nothing more to say
            return report
        for index, cert in enumerate(candidates):
            if cert in self._anchors:
                continue
            anchor = next((a for a in self._anchors.non_ca if _names_issuer(a, cert)), None)
            if anchor is None:
                continue
            which = (
                "the signer certificate"
                if index == 0
                else f"the certificate '{_display_name(cert.subject)}' the signature carries"
            )
            return _untrusted(
                report,
                "CHAIN_CONSTRAINTS_FAILURE",
                f"{which} was issued by the trust anchor '{_display_name(anchor.subject)}',"
                " which is not a CA certificate: a trust anchor that is not a CA vouches only"
                " for its own signatures (RFC 5280 4.2.1.9)",
            )
        return report

    def _known_certificates(
        self, ctx: _SigContext, embedded: EmbeddedPdfSignature
    ) -> tuple[x509.Certificate, ...]:
        """Where an OCSP response's issuer key may be found: the signature's certificates, the
        DSS's and the anchors."""
        return (*embedded.other_embedded_certs, *ctx.dss_certs, *self._anchors.certificates)

    async def _validate(
        self,
        ctx: _SigContext,
        embedded: EmbeddedPdfSignature,
        kind: SignatureKind,
        base: dict[str, Any],
        *,
        fetch: bool,
    ) -> SignatureReport:
        try:
            vc = self._validation_context(ctx, embedded, fetch=fetch)
        except DeadlineExceeded:
            raise
        except Exception as err:
            # the DSS's revocation data was loaded already: what fails here is the signature's
            # own (a signed attribute: the CMS does not conform, EN 319 102-1 FORMAT_FAILURE)
            return SignatureReport(
                indication=Indication.TOTAL_FAILED,
                sub_indication="FORMAT_FAILURE",
                reasons=(
                    mask_text(
                        "the revocation data in the signature's adbe-revocationInfoArchival"
                        " attribute cannot be read (ISO 32000-1 12.8.3.3):"
                        f" {type(err).__name__}: {str(err)[:200]}"
                    ),
                ),
                **base,
            )
        status: PdfSignatureStatus | DocumentTimestampStatus
        past: _PastValidation | None = None
        try:
            if kind is SignatureKind.DOCUMENT_TIMESTAMP:
                status = await async_validate_pdf_timestamp(embedded, vc)
            else:
                status = await async_validate_pdf_signature(embedded, vc, vc)
                if _revoked_with_trusted_time_stamp(status):
                    # pyHanko's validator above checks revocation at the validation time only
                    past = await self._validate_with_time(ctx, embedded, vc)
        except (PdfDecodeLimitError, DeadlineExceeded):
            raise
        except _PathSearchLimitReached as err:
            # EN 319 102-1 CERTIFICATE_CHAIN_GENERAL_FAILURE: the set of certificates
            # available for path validation produced an error (here: too many candidates)
            return SignatureReport(
                indication=Indication.INDETERMINATE,
                sub_indication="CERTIFICATE_CHAIN_GENERAL_FAILURE",
                reasons=(
                    f"{_PATH_SEARCH_STOPPED} after {err.candidates} candidate issuer"
                    " certificates: the certificates the signature and the document carry"
                    " allow too many paths",
                ),
                **base,
            )
        except Exception as err:
            sub = getattr(err, "ades_subindication", None)
            indication, sub_name = (
                _indication_for(sub) if sub else (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
            )
            return SignatureReport(
                indication=indication,
                sub_indication=sub_name,
                reasons=(mask_text(f"validation error: {type(err).__name__}: {str(err)[:300]}"),),
                **base,
            )
        finally:
            await _release(vc)
        report = _report_from_status(base, kind, status)
        if isinstance(status, PdfSignatureStatus) and report.sub_indication == _REVOKED_NO_POE:
            report = _judged_by_proof_of_existence(report, status, past)
        if status.validation_path is None:
            return report
        known = self._known_certificates(ctx, embedded)
        return dataclasses.replace(
            report,
            authorities_revocation_data_in_dss=all(
                _has_revocation_data_for(authority, known, ocsps=ctx.dss_ocsps, crls=ctx.dss_crls)
                for authority in _authorities_below_anchor(status.validation_path)
                if _declares_revocation_service(authority) is not False
            ),
        )

    async def _validate_with_time(
        self, ctx: _SigContext, embedded: EmbeddedPdfSignature, vc: ValidationContext
    ) -> _PastValidation:
        """pyHanko's validation of a signature with time (EN 319 102-1 5.5,
        ``ades_with_time_validation``) for a signature whose signer certificate ``vc`` found
        revoked: whether its trusted signature time-stamp proves it existed before the
        revocation. It uses the same trust anchors (and rules on them), the same validation
        time and the very revocation data ``vc`` gathered (its revocation manager, with what
        it fetched), and fetches nothing more."""
        spec = SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=_PathTrustManager(
                    self._anchors.certificates,
                    max_candidates=self._limits.max_path_candidates,
                    deadline=ctx.deadline,
                ),
                revinfo_policy=vc.revinfo_policy,
                time_tolerance=vc.time_tolerance,
                algorithm_usage_policy=vc.algorithm_policy,
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
                fetcher_backend=_NoFetching(),
            ),
            key_usage_settings=_DOCUMENT_SIGNING_KEY_USAGE,
        )
        handlers = ValidationDataHandlers(
            revinfo_manager=vc.revinfo_manager,
            poe_manager=vc.revinfo_manager.poe_manager,
            cert_registry=vc.certificate_registry,
        )
        timing = ValidationTimingInfo(
            validation_time=ctx.validation_time,
            best_signature_time=ctx.validation_time,
            point_in_time_validation=True,
        )
        compromised = _key_compromised_since(embedded.signer_cert, vc)
        try:
            result = await ades_with_time_validation(
                embedded.signed_data,
                spec,
                timing_info=timing,
                raw_digest=embedded.compute_digest(),
                validation_data_handlers=handlers,
            )
        except (PdfDecodeLimitError, DeadlineExceeded):
            raise
        except Exception as err:  # no verdict from it: the revocation stands
            return _PastValidation(
                passed=False,
                proof_of_existence=None,
                compromised_since=compromised,
                detail=f"{type(err).__name__}: {str(err)[:200]}",
            )
        passed = result.ades_subindic is AdESPassed.OK
        detail = getattr(result.ades_subindic, "name", str(result.ades_subindic))
        if result.failure_msg:
            detail = f"{detail}: {result.failure_msg[:200]}"
        return _PastValidation(
            passed=passed,
            proof_of_existence=result.best_signature_time if passed else None,
            compromised_since=compromised,
            detail=detail,
        )

    def _validation_context(
        self, ctx: _SigContext, embedded: EmbeddedPdfSignature, *, fetch: bool
    ) -> ValidationContext:
        ocsps, crls = list(ctx.dss_ocsps), list(ctx.dss_crls)
        archived = _adobe_revinfo_archival(embedded)
        ocsps.extend(archived[0])
        crls.extend(archived[1])
        kwargs: dict[str, Any] = {
            "trust_manager": _PathTrustManager(
                self._anchors.certificates,
                max_candidates=self._limits.max_path_candidates,
                deadline=ctx.deadline,
            ),
            "other_certs": list(ctx.dss_certs),
            "ocsps": ocsps,
            "crls": crls,
            "moment": ctx.validation_time,
            "revocation_mode": str(ctx.revocation_mode),
            "allow_fetching": fetch,
        }
        if fetch and self._fetcher_backend is not None:
            kwargs["fetcher_backend"] = self._fetcher_backend
        return ValidationContext(**kwargs)


_PATH_SEARCH_STOPPED = "the certificate path search stopped"
_REVOKED_NO_POE = AdESIndeterminate.REVOKED_NO_POE.name


@dataclass(frozen=True)
class _PastValidation:
    """What pyHanko's validation with time said of a signature whose signer certificate is
    revoked."""

    #: AdES PASSED: the signature's proof of existence precedes the revocation
    passed: bool
    #: the best signature time pyHanko established (its trusted signature time-stamp), when
    #: it passed
    proof_of_existence: datetime | None
    #: the earliest key-compromise date (invalidityDate) the revocation data states, if any
    compromised_since: datetime | None
    #: pyHanko's sub-indication and message, for the report
    detail: str


class _NoFetching(FetcherBackend):
    """A fetcher backend that reaches nothing: the validation with time works on revocation
    data already gathered, and pyHanko provisions a network backend of its own when a
    specification names none."""

    def get_fetchers(self) -> Fetchers:
        raise RuntimeError("the validation with time fetches nothing")

    async def close(self) -> None:
        return None


def _revoked_with_trusted_time_stamp(status: PdfSignatureStatus) -> bool:
    """Whether the signer certificate (not a CA's) was found revoked and the signature carries
    a signature time-stamp that validated: the case where the time-stamp may prove the
    signature existed before the revocation (EN 319 102-1 5.5)."""
    details = status.revocation_details
    tst = status.timestamp_validity
    return (
        status.trust_problem_indic is AdESIndeterminate.REVOKED_NO_POE
        and details is not None
        and not details.ca_revoked
        and tst is not None
        and bool(tst.intact and tst.valid and tst.trusted)
    )


def _key_compromised_since(cert: x509.Certificate, vc: ValidationContext) -> datetime | None:
    """The earliest invalidityDate (RFC 5280 5.3.2: since when the key is known or suspected
    to be compromised) that the revocation data ``vc`` gathered states for ``cert``: in a CRL
    entry of its issuer or an OCSP single response for it. pyhanko-certvalidator reads the
    revocation date only; a date here earlier than the proof of existence means the key may
    have been someone else's when the signature was made."""
    dates: list[datetime] = []
    try:
        for crl in vc.crls:
            if crl.issuer != cert.issuer:
                continue
            for entry in crl["tbs_cert_list"]["revoked_certificates"] or ():
                if entry["user_certificate"].native == cert.serial_number:
                    invalidity = entry.invalidity_date_value
                    if invalidity is not None:
                        dates.append(invalidity.native)
        issuer_name_hashes = {
            algorithm: _digest(algorithm, cert.issuer.dump()) for algorithm in ("sha1", "sha256")
        }
        for response in vc.ocsps:
            for single in _single_responses(response):
                cert_id = single["cert_id"]
                algorithm = cert_id["hash_algorithm"]["algorithm"].native
                if (
                    cert_id["serial_number"].native != cert.serial_number
                    or issuer_name_hashes.get(algorithm) != cert_id["issuer_name_hash"].native
                ):
                    continue
                invalidity = single.invalidity_date_value
                if invalidity is not None:
                    dates.append(invalidity.native)
    except Exception as err:  # unreadable revocation data states no date
        _log.info("unreadable revocation entry ignored", extra={"error": type(err).__name__})
    return min(dates) if dates else None


def _utc(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def _judged_by_proof_of_existence(
    report: SignatureReport, status: PdfSignatureStatus, past: _PastValidation | None
) -> SignatureReport:
    """A signature whose signer certificate is revoked (INDETERMINATE/REVOKED_NO_POE from the
    validation at the validation time), judged by its proof of existence (EN 319 102-1 5.5,
    5.6): TOTAL_PASSED when pyHanko's validation with time passed, i.e. a trusted signature
    time-stamp earlier than the revocation, and the revocation data does not say the key was
    compromised at or before that time; otherwise it stays REVOKED_NO_POE, with the reason."""
    details = status.revocation_details
    if details is None:
        return report
    revoked_at = details.revocation_date
    try:
        why = str(details.revocation_reason.native or "").replace("_", " ")
    except Exception:  # informative only
        why = ""
    revoked = f"the signer certificate was revoked at {_utc(revoked_at)}" + (
        f" ({why})" if why else ""
    )
    tst = status.timestamp_validity
    stamped = tst.timestamp if tst is not None and past is not None else None
    if past is None or stamped is None:
        return _still_revoked(
            report,
            f"{revoked}, and nothing proves the signature existed before: it has no trusted"
            " signature time-stamp",
        )
    poe = past.proof_of_existence or stamped
    if poe >= revoked_at:
        return _still_revoked(
            report,
            f"{revoked}, at or before the signature's proof of existence at {_utc(poe)} (its"
            " signature time-stamp): nothing proves it was made before the revocation",
        )
    if past.compromised_since is not None and past.compromised_since <= poe:
        return _still_revoked(
            report,
            f"{revoked}, and its issuer states the key was compromised since"
            f" {_utc(past.compromised_since)}, at or before the signature's proof of existence"
            f" at {_utc(poe)}",
        )
    if not past.passed:
        return _still_revoked(
            report,
            f"{revoked}, after the signature's time-stamp at {_utc(poe)}, but the validation"
            f" at that time did not pass ({past.detail})",
        )
    return dataclasses.replace(
        report,
        indication=Indication.TOTAL_PASSED,
        sub_indication=None,
        trusted=True,
        reasons=(
            f"{revoked}, after the signature's proof of existence at {_utc(poe)} (its trusted"
            " signature time-stamp): the signature was made while the certificate was valid"
            " (ETSI EN 319 102-1 5.5)",
            _PASSED_AT_POE_REASON,
        ),
    )


def _still_revoked(report: SignatureReport, reason: str) -> SignatureReport:
    return dataclasses.replace(
        report,
        reasons=(mask_text(reason), *(r for r in report.reasons if r != _SIGNER_REVOKED)),
    )


class _PathSearchLimitReached(Exception):
    """The certificate path search examined ``candidates`` certificates and was stopped."""

    def __init__(self, candidates: int) -> None:
        super().__init__(f"more than {candidates} candidate issuer certificates")
        self.candidates = candidates


class _PathTrustManager(SimpleTrustManager):
    """The trust anchors as pyhanko-certvalidator's path builder sees them, with two rules of
    ours:

    - an anchor that is not a CA certificate (RFC 5280 4.2.1.9: without basicConstraints cA
      its key must not verify certificate signatures; an e-seal trusted directly) is offered
      as nobody's issuer: it still validates its own signatures (the path builder takes a
      signer that is itself an anchor as a path of its own), never a certificate its key
      holder issued;
    - the path builder asks for the anchors that may have issued a certificate once for every
      certificate it tries to extend a path from: each ask checks the verification deadline
      and counts against ``max_candidates``. Same-named certificates multiply the candidate
      paths (8 per level over 6 levels: 262,144 paths, each validated, each failure kept), so
      beyond the limit the search stops with :class:`_PathSearchLimitReached`.
    """

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        *,
        max_candidates: int,
        deadline: Deadline,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        for anchor in anchors:
            self._register_root(anchor)
        self._max_candidates = max_candidates
        self._candidates = 0
        self._deadline = deadline

    def find_potential_issuers(self, cert: x509.Certificate) -> Iterator[TrustAnchor]:
        self._deadline.check()
        self._candidates += 1
        if self._candidates > self._max_candidates:
            raise _PathSearchLimitReached(self._max_candidates)
        for anchor in super().find_potential_issuers(cert):
            authority = anchor.authority
            if isinstance(authority, AuthorityWithCert) and not _may_issue_certificates(
                authority.certificate
            ):
                continue
            yield anchor


def _may_issue_certificates(cert: x509.Certificate) -> bool:
    """Whether ``cert``'s key may sign certificates: a CA certificate (basicConstraints cA,
    RFC 5280 4.2.1.9) whose key usage, if stated, includes keyCertSign (4.2.1.3). A version 1
    or 2 certificate has no extensions to say so (the old form of self-signed roots): it
    counts as a CA, as anchors always have."""
    try:
        if cert["tbs_certificate"]["version"].native in ("v1", "v2"):
            return True
        if not cert.ca:
            return False
        usage = cert.key_usage_value
        return usage is None or "key_cert_sign" in usage.native
    except Exception:  # extensions that cannot be read grant nothing
        return False


def _names_issuer(issuer: x509.Certificate, cert: x509.Certificate) -> bool:
    """Whether ``issuer`` is named as ``cert``'s issuer: by name, and by key identifier when
    both state one (RFC 5280 4.2.1.1)."""
    try:
        if issuer.subject != cert.issuer:
            return False
        wanted, have = cert.authority_key_identifier, issuer.key_identifier
        return wanted is None or have is None or wanted == have
    except Exception:
        return False


async def _release(vc: ValidationContext) -> None:
    # with fetching enabled the context owns fetchers that must be closed
    try:
        fetchers = getattr(vc, "_fetchers", None)
        if fetchers is not None and hasattr(vc, "release"):
            await vc.release()
    except Exception:  # noqa: S110 - closing idle fetchers must not change a verdict
        pass


def _enforce_no_changes_certification(
    reader: PdfFileReader,
    report: SignatureReport,
    timestamped_revisions: set[int],
    deadline: Deadline,
) -> SignatureReport:
    """After DocMDP P=1 only DSS updates and document timestamps may follow (PAdES, EN 319 142-1
    5.4): every later revision must add a document time-stamp (one of
    ``timestamped_revisions``) or change the DSS. pyHanko accepts a new empty signature field
    there, and a revision that only rewrites document metadata (/Info, XMP: title, author ...)
    as an "LTA update"; we accept neither."""
    if report.certification_level != 1 or report.signed_revision is None:
        return report
    if report.indication is Indication.TOTAL_FAILED:
        return report
    try:
        before = {
            name
            for name, _, _ in enumerate_sig_fields(
                reader.get_historical_resolver(report.signed_revision)
            )
        }
        offending = []
        for name, value, _ in enumerate_sig_fields(reader):
            if name in before:
                continue
            kind = str(value.get_object().get("/Type", "/Sig")) if value is not None else ""
            if kind != "/DocTimeStamp":
                offending.append(_field_label(name))
        metadata = _metadata_changed_since(reader, report.signed_revision, deadline)
        neither = []
        for revision in range(report.signed_revision + 1, reader.xrefs.total_revisions):
            deadline.check()
            if revision not in timestamped_revisions and not _dss_changed_in(reader, revision):
                neither.append(revision)
    except (PdfDecodeLimitError, DeadlineExceeded):
        raise
    except Exception as err:
        offending = [f"(unreadable later revision: {type(err).__name__})"]
        metadata, neither = [], []
    if not offending and not metadata and not neither:
        return report
    what = []
    if offending:
        what.append(f"signature fields were added afterwards: {', '.join(offending)[:200]}")
    if metadata:
        what.append(f"its metadata was changed afterwards: {', '.join(metadata)[:200]}")
    if neither:
        what.append(
            "a later revision is neither a DSS update nor a document time-stamp: "
            + ", ".join(str(r) for r in neither[:10])
        )
    return dataclasses.replace(
        report,
        indication=Indication.TOTAL_FAILED,
        sub_indication="ILLEGAL_MODIFICATIONS",
        docmdp_ok=False,
        pades_level=PadesLevel.NONE,
        reasons=(
            "the document was certified with no changes allowed, yet " + "; ".join(what),
            *report.reasons,
        ),
    )


#: what every PDF writer updates on an incremental save, a DSS update or a document time-stamp
#: included (ISO 32000-1 14.3.3; XMP: xmp:ModifyDate, xmp:MetadataDate, pdf:Producer)
_INFO_BOOKKEEPING = frozenset({"/ModDate", "/Producer"})
_XMP_BOOKKEEPING = frozenset({"ModifyDate", "MetadataDate", "Producer"})


def _metadata_changed_since(reader: PdfFileReader, revision: int, deadline: Deadline) -> list[str]:
    """Document metadata entries that some later revision changed, added or removed compared
    with ``revision``, bookkeeping excepted ("/Title", "XMP title" ...). Each later revision is
    compared on its own, so a change undone later still counts (as in pyHanko's analysis).
    Each costs time in proportion to the revisions (pyHanko resolves an object by looking
    through them): DocumentLimits.max_revisions bounds the whole, the deadline each step."""
    if revision + 1 >= reader.xrefs.total_revisions:
        return []  # nothing follows it (most documents, verified on every call)
    base = reader.get_historical_resolver(revision)
    base_info, base_xmp = _document_info(base), _xmp_properties(base)
    changed: list[str] = []
    for later in range(revision + 1, reader.xrefs.total_revisions):
        deadline.check()
        resolver = reader.get_historical_resolver(later)
        info, xmp = _document_info(resolver), _xmp_properties(resolver)
        for key in sorted(base_info.keys() | info.keys()):
            if base_info.get(key) != info.get(key) and key not in changed:
                changed.append(key)
        for key in sorted(base_xmp.keys() | xmp.keys()):
            if base_xmp.get(key) != xmp.get(key) and f"XMP {key}" not in changed:
                changed.append(f"XMP {key}")
    return changed


def _metadata_changed_after_last_signature(
    reader: PdfFileReader, reports: Sequence[SignatureReport], deadline: Deadline
) -> list[str]:
    """The document metadata (/Info, XMP; bookkeeping excepted) changed after the revision the
    last signature signed. pyHanko's difference analysis accepts an /Info rewrite after an
    approval signature as an "LTA update", yet the title a reader is shown is then one that no
    signer signed (a document time-stamp covers it, but says nothing of who wrote it)."""
    signed = [
        r.signed_revision
        for r in reports
        if r.kind is SignatureKind.SIGNATURE and r.signed_revision is not None
    ]
    if not signed:
        return []
    try:
        return _metadata_changed_since(reader, max(signed), deadline)
    except (PdfDecodeLimitError, DeadlineExceeded):
        raise
    except Exception as err:  # a later revision that cannot be read is not vouched for either
        return [f"(unreadable later revision: {type(err).__name__})"]


def _dss_changed_in(reader: PdfFileReader, revision: int) -> bool:
    """Whether ``revision`` adds to or changes the document security store."""
    return _dss_entries(reader.get_historical_resolver(revision)) != _dss_entries(
        reader.get_historical_resolver(revision - 1)
    )


def _dss_entries(resolver: Any) -> tuple[tuple[str, ...], ...] | None:
    dss = resolver.root.get("/DSS")
    if dss is None:
        return None
    dss = dss.get_object()
    entries = []
    for key in ("/Certs", "/OCSPs", "/CRLs"):
        values = dss.get(key)
        entries.append(tuple(repr(v) for v in values) if values is not None else ())
    vri = dss.get("/VRI")
    entries.append(tuple(sorted(str(k) for k in vri)) if vri is not None else ())
    return tuple(entries)


def _document_info(resolver: Any) -> dict[str, str]:
    info = resolver.trailer_view.get("/Info")
    if info is None:
        return {}
    info = info.get_object()
    if not isinstance(info, generic.DictionaryObject):
        return {"/Info": repr(info)}
    return {
        mask_text(str(key)): repr(info[key]) for key in info if str(key) not in _INFO_BOOKKEEPING
    }


def _xmp_properties(resolver: Any) -> dict[str, str]:
    stream = resolver.root.get("/Metadata")
    if stream is None:
        return {}
    data = stream.get_object().data
    try:
        roots = parse_xmp(io.BytesIO(data))
    except Exception:  # unparsable XMP: any change of its bytes is a change
        return {"metadata stream": hashlib.sha256(data).hexdigest()}
    return {
        name.local_name: repr(value)
        for root in roots
        for name, value in root
        if name.local_name not in _XMP_BOOKKEEPING
    }


def _unattached_signatures(
    reader: PdfFileReader,
    filled: list[tuple[str, generic.DictionaryObject]],
    scan: DocumentScan,
    *,
    max_objects: int,
    deadline: Deadline,
) -> tuple[list[SignatureReport], str | None]:
    """Signature dictionaries (/ByteRange and /Contents) that no signature field uses, and why
    the search could not be completed, if it could not.

    A viewer does not show them and pyHanko does not see them; they still claim to sign the
    document, so each is reported and fails (DESIGN.md: every signature dictionary appears).
    An object that cannot be read is skipped and the search goes on (one bad xref offset must
    not hide the others); a search that could not be made (more than ``max_objects``
    objects, unreadable cross-reference data) is reported as such, never as "none found".
    """
    used: set[tuple[int, int]] = set()
    for _, field_obj in filled:
        value = field_obj.get_object().raw_get("/V")  # type: ignore[no-untyped-call]
        if isinstance(value, generic.IndirectObject):
            used.add((value.idnum, value.generation))
    what = "the search for signature dictionaries that no field uses"
    try:
        # Fast path: no object streams (where a dictionary could hide compressed) and no more
        # /ByteRange keys in the raw file than signature fields: nothing is unattached.
        compressed = any(
            reader.xrefs.object_streams_used_in(revision)  # type: ignore[no-untyped-call]
            for revision in range(reader.xrefs.total_revisions)
        )
        if not compressed and scan.count <= len(used):
            return [], None
        refs: set[generic.Reference] = set()
        for revision in range(reader.xrefs.total_revisions):
            refs |= reader.xrefs.explicit_refs_in_revision(revision)
    except PdfDecodeLimitError:
        raise
    except Exception as err:
        return [], (
            f"{what} could not be made: the cross-reference data cannot be read"
            f" ({type(err).__name__})"
        )
    if len(refs) > max_objects:
        return [], f"{what} was not made: the file has {len(refs)} objects, more than {max_objects}"
    found = []
    for count, ref in enumerate(sorted(refs, key=lambda r: (r.idnum, r.generation))):
        if count % 256 == 0:
            deadline.check()
        if (ref.idnum, ref.generation) in used:
            continue
        try:
            obj = reader.get_object(ref)  # type: ignore[no-untyped-call]
            if isinstance(obj, generic.StreamObject) or not isinstance(
                obj, generic.DictionaryObject
            ):
                continue
            if "/ByteRange" in obj and "/Contents" in obj:
                found.append((ref, obj))
        except PdfDecodeLimitError:
            raise
        except Exception:  # noqa: S112 - this object is unreadable, the others are not
            continue
    return [
        _format_failure(
            f"(no field) object {ref.idnum} {ref.generation}",
            SignatureKind.DOCUMENT_TIMESTAMP
            if str(obj.get("/Type", "")) == "/DocTimeStamp"
            else SignatureKind.SIGNATURE,
            str(obj.get("/SubFilter", "")),
            "a signature dictionary that no signature field uses",
            bytes_after=_bytes_after_range(obj, scan.size),
        )
        for ref, obj in found
    ], None


def _signature_fields(
    reader: PdfFileReader,
) -> tuple[list[tuple[str, generic.DictionaryObject]], list[str]]:
    filled: list[tuple[str, generic.DictionaryObject]] = []
    empty: list[str] = []
    try:
        for name, value, field_ref in enumerate_sig_fields(reader):
            if value is None:
                empty.append(_field_label(name))
            else:
                filled.append((name, field_ref))
    except PdfDecodeLimitError:
        raise
    except Exception as err:
        raise InvalidArgument("PDF_MALFORMED", f"the form fields cannot be read: {err}") from err
    return filled, empty


def _read_dss(
    reader: PdfFileReader,
) -> tuple[
    tuple[x509.Certificate, ...],
    tuple[asn1_ocsp.OCSPResponse, ...],
    tuple[asn1_crl.CertificateList, ...],
]:
    if "/DSS" not in reader.root:
        return (), (), ()
    try:
        store = pyhanko_dss.DocumentSecurityStore.read_dss(reader)
        vc = store.as_validation_context({})
        certs = tuple(store.load_certs())
        return certs, tuple(vc.ocsps), tuple(vc.crls)
    except PdfDecodeLimitError:
        raise
    except Exception as err:
        _log.info("unreadable DSS ignored", extra={"error": type(err).__name__})
        return (), (), ()


def _adobe_revinfo_archival(
    embedded: EmbeddedPdfSignature,
) -> tuple[list[asn1_ocsp.OCSPResponse], list[asn1_crl.CertificateList]]:
    """Revocation data in the signed ``adbe-revocationInfoArchival`` attribute (ISO 32000-1
    12.8.3.3). Raises ValueError when the attribute is there and cannot be read: it is a
    signed attribute, so the signature itself is malformed (the caller's FORMAT_FAILURE)."""
    ocsps: list[asn1_ocsp.OCSPResponse] = []
    crls: list[asn1_crl.CertificateList] = []
    attrs = embedded.signer_info["signed_attrs"]
    if not isinstance(attrs, cms.CMSAttributes):  # no signed attributes at all
        return ocsps, crls
    try:
        for attr in attrs:
            if attr["type"].native != "adobe_revocation_info_archival":
                continue
            for value in attr["values"]:
                crls.extend(value["crl"] or ())
                ocsps.extend(value["ocsp"] or ())
    except Exception as err:
        raise ValueError(f"{type(err).__name__}: {err}") from err
    return ocsps, crls


#: characters shown escaped in a field name: C0/C1 controls and what XML 1.0 cannot carry
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _field_label(name: object) -> str:
    """A field's name (/T) as text a report can carry (UTF-8 in protobuf, XML 1.0): pyHanko
    leaves a /T it cannot decode as bytes; undecodable parts become U+FFFD and control
    characters are shown escaped (``\\x01``), so the name is still recognisable."""
    if isinstance(name, bytes):
        raw = bytes(name)
        text = (
            raw[2:].decode("utf-16-be", errors="replace")
            if raw.startswith(b"\xfe\xff")
            else raw.decode("latin-1")
        )
    else:
        text = str(name)
    text = _SURROGATE.sub("\ufffd", text)
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


#: PDF white-space (ISO 32000-1 7.2.2)
_PDF_WHITESPACE = b"\x00\t\n\x0c\r "
#: the %%EOF marker at the start of a line, and the line end after it
_EOF_LINE = re.compile(rb"(?:^|(?<=[\r\n]))%%EOF(?:\r\n|\r|\n)?")
#: pyHanko looks for the last %%EOF line in the final 1 KiB of the file; twice that is read
_TAIL_BYTES = 2048


def _bytes_after_last_revision(stream: BinaryIO, size: int) -> int:
    """Bytes after the line with the %%EOF marker that ends the last revision the reader found
    (white-space alone counts for nothing). pyHanko, reading backwards from the end, takes the
    last line that starts with %%EOF (ISO 32000-1 7.5.5); poppler and others look for the last
    startxref instead, so an update appended without %%EOF is read by them and not by
    pyHanko. Anything after that line belongs to no revision the verifier read."""
    window = min(size, _TAIL_BYTES)
    position = stream.tell()
    try:
        stream.seek(size - window)
        tail = stream.read(window)
    finally:
        stream.seek(position)
    ends = [
        match.end()
        for match in _EOF_LINE.finditer(tail)
        # the window's first byte starts a line only when it is the file's first byte
        if match.start() > 0 or window == size
    ]
    if not ends:  # the reader found one, or it would not have opened the file
        return window
    rest = tail[ends[-1] :]
    return len(rest) if rest.strip(_PDF_WHITESPACE) else 0


def _byte_range_problem(
    sig_obj: generic.DictionaryObject, stream: BinaryIO, file_size: int
) -> str | None:
    """What makes the signature's /ByteRange other than the standard [0 a b c]: two ranges,
    the first from the file's start, the gap between them exactly the /Contents string with
    its delimiters, the second within the file (ISO 32000-1 12.8.1; PAdES, EN 319 142-1, takes
    no other form); None when it is standard. Checked before anything is hashed: pyHanko
    hashes any list of ranges as it comes, and 40,000 ranges over the whole file hash it
    40,000 times with no deadline in between."""
    try:
        raw = sig_obj.raw_get("/ByteRange")
    except KeyError:
        return "it is missing"
    if not isinstance(raw, generic.ArrayObject):
        return "it is not an array"
    if len(raw) != 4:
        return f"it has {len(raw)} numbers, not 4"
    values = [raw.raw_get(i) for i in range(4)]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "its entries are not all integers"
    start, first_length, second_start, second_length = (int(v) for v in values)
    if start != 0:
        return "it does not start at byte 0"
    if first_length <= 0 or second_length <= 0:
        return "one of its ranges is empty"
    if second_start < first_length:
        return "its second range starts before the end of the first"
    if second_start + second_length > file_size:
        return "it goes past the end of the file"
    contents = sig_obj.get("/Contents")  # absent: None
    if not isinstance(contents, generic.ByteStringObject | generic.TextStringObject):
        return None  # no signature container: the caller says so, nothing is hashed
    # the hexadecimal string, two digits a byte, and its < > delimiters
    gap = 2 * len(contents.original_bytes) + 2
    position = stream.tell()
    try:
        stream.seek(first_length)
        opening = stream.read(1)
        stream.seek(second_start - 1)
        closing = stream.read(1)
    finally:
        stream.seek(position)
    if second_start - first_length != gap or (opening, closing) != (b"<", b">"):
        return "the gap between its ranges is not the signature's /Contents"
    return None


def _bytes_after_range(sig_obj: generic.DictionaryObject, file_size: int) -> int:
    try:
        br = [int(x) for x in sig_obj.raw_get("/ByteRange")]
        return max(0, file_size - (br[-2] + br[-1]))
    except Exception:
        return file_size


def _format_failure(
    name: str,
    kind: SignatureKind,
    subfilter: str,
    reason: str,
    *,
    bytes_after: int = 0,
    signed_revision: int | None = None,
) -> SignatureReport:
    return SignatureReport(
        field_name=name,
        kind=kind,
        subfilter=subfilter.lstrip("/"),
        indication=Indication.TOTAL_FAILED,
        sub_indication="FORMAT_FAILURE",
        reasons=(mask_text(reason[:400]),),
        bytes_after_signed_range=bytes_after,
        signed_revision=signed_revision,
    )


def _indication_for(sub: AdESSubIndic) -> tuple[Indication, str]:
    if isinstance(sub, AdESFailure):
        return Indication.TOTAL_FAILED, sub.name
    if isinstance(sub, AdESIndeterminate):
        return Indication.INDETERMINATE, sub.name
    return Indication.INDETERMINATE, str(getattr(sub, "name", sub))


_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: Coverage.ENTIRE_FILE,
    SignatureCoverageLevel.ENTIRE_REVISION: Coverage.ENTIRE_REVISION,
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: Coverage.PARTIAL,
    SignatureCoverageLevel.UNCLEAR: Coverage.PARTIAL,
}


def _report_from_status(
    base: dict[str, Any],
    kind: SignatureKind,
    status: PdfSignatureStatus | DocumentTimestampStatus,
) -> SignatureReport:
    coverage = (
        _COVERAGE.get(status.coverage, Coverage.UNKNOWN) if status.coverage else (Coverage.UNKNOWN)
    )
    mod_level = status.modification_level
    reasons: list[str] = []
    indication, sub = Indication.TOTAL_PASSED, None
    if not status.intact:
        indication, sub = Indication.TOTAL_FAILED, "HASH_FAILURE"
        reasons.append("the document bytes do not match the signed digest")
    elif not status.valid:
        indication, sub = Indication.TOTAL_FAILED, "SIG_CRYPTO_FAILURE"
        reasons.append("the signature value does not verify with the signer's key")
    elif coverage is not Coverage.ENTIRE_FILE and coverage is not Coverage.ENTIRE_REVISION:
        indication, sub = Indication.TOTAL_FAILED, "FORMAT_FAILURE"
        reasons.append("the /ByteRange does not cover its whole revision")
    elif (mod_level is not None and mod_level.name == "OTHER") or status.docmdp_ok is False:
        indication, sub = Indication.TOTAL_FAILED, "ILLEGAL_MODIFICATIONS"
        reasons.append(
            "the document was changed after signing in a way that is not allowed"
            + (
                " (certification/DocMDP violated)"
                if status.docmdp_ok is False and base.get("certification_level") is not None
                else ""
            )
        )
    elif status.trust_problem_indic is not None:
        indication, sub = _indication_for(status.trust_problem_indic)
        reasons.append(f"certificate path: {sub}")
    else:
        reasons.append(_PASSED_REASON)
    if bool(getattr(status, "revoked", False)):
        reasons.append(_SIGNER_REVOKED)

    tst_time: datetime | None = None
    tst_trusted = False
    claimed: datetime | None = None
    if isinstance(status, DocumentTimestampStatus):
        tst_time = status.timestamp
        tst_trusted = status.trusted
    else:
        claimed = status.signer_reported_dt
        tst = status.timestamp_validity
        if tst is not None:
            tst_time = tst.timestamp
            tst_trusted = bool(tst.intact and tst.valid and tst.trusted)
            if not tst_trusted:
                reasons.append("the signature timestamp cannot be validated; disregarded as POE")
    path: tuple[str, ...] = ()
    if status.validation_path is not None:
        try:
            path = tuple(_display_name(c.subject) for c in status.validation_path.iter_certs(True))
        except Exception:
            path = ()
    return SignatureReport(
        indication=indication,
        sub_indication=sub,
        reasons=tuple(reasons),
        claimed_signing_time=claimed,
        timestamp_time=tst_time,
        timestamp_trusted=tst_trusted,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        revoked=bool(getattr(status, "revoked", False)),
        revoked_at=_revocation(status)[0],
        revocation_reason=_revocation(status)[1],
        coverage=coverage,
        modification_level=mod_level.name if mod_level is not None else None,
        docmdp_ok=status.docmdp_ok,
        certificate_path=tuple(reversed(path)),
        digest_algorithm=str(status.md_algorithm),
        signature_algorithm=_signature_algorithm(status),
        **base,
    )


_PASSED_REASON = "the signature is intact, valid and trusted"
_PASSED_AT_POE_REASON = (
    "the signature is intact and valid, and its certificate path was trusted when it was made"
)
_SIGNER_REVOKED = "the signer certificate is revoked"


def _trust_anchor_signer(
    report: SignatureReport, cert: x509.Certificate, when: datetime
) -> SignatureReport:
    """A signer certificate that is itself a trust anchor: pyHanko checks neither its validity
    period, nor its revocation, nor its key usage (RFC 5280 6.1: an anchor is trusted as
    configured, and here there is no path above it; the corpus's verdicts trust such a signer
    as configured). Two checks are made here all the same:

    - a key usage extension that allows neither digitalSignature nor nonRepudiation (RFC 5280
      4.2.1.3: a root CA's keyCertSign and cRLSign) says the key does not sign documents:
      INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE. (Without the extension nothing is restricted.)
    - outside its validity period: INDETERMINATE/OUT_OF_BOUNDS_NO_POE (EN 319 102-1 5.2.7).

    Its revocation stays unchecked, and the report says so."""
    if report.indication is Indication.TOTAL_FAILED:
        return report
    usage = cert.key_usage_value
    if usage is not None and not usage.native & {"digital_signature", "non_repudiation"}:
        allowed = ", ".join(sorted(usage.native)) or "none"
        return _untrusted(
            report,
            "CHAIN_CONSTRAINTS_FAILURE",
            "the signer certificate, a trust anchor, does not sign documents"
            f" (its key usage allows: {allowed})",
        )
    not_before, not_after = cert.not_valid_before, cert.not_valid_after
    if not_before <= when <= not_after:
        return dataclasses.replace(
            report,
            reasons=(
                *report.reasons,
                "the signer certificate is itself a trust anchor: its revocation is not checked",
            ),
        )
    return _untrusted(
        report,
        "OUT_OF_BOUNDS_NO_POE",
        "the signer certificate, a trust anchor, is not valid at the validation time"
        f" (valid from {not_before:%Y-%m-%d %H:%M:%S}Z to {not_after:%Y-%m-%d %H:%M:%S}Z)",
    )


#: Key purposes (RFC 5280 4.2.1.12) that let a certificate whose extendedKeyUsage extension is
#: present sign documents, as PAdES validators accept them: anyExtendedKeyUsage;
#: emailProtection (S/MIME signing certificates: Adobe Acrobat accepts them for PDF, and the
#: corpus's signers carry it beside clientAuth); id-kp-documentSigning (RFC 9336); Adobe
#: Authentic Documents Trust; Microsoft document signing. A certificate without the extension
#: is not restricted (ours have none: keys' profiles set keyUsage nonRepudiation and
#: digitalSignature only). timeStamping, OCSPSigning, clientAuth, serverAuth, codeSigning alone
#: name other uses of the key.
_DOCUMENT_SIGNING_PURPOSES = frozenset(
    x509.KeyPurposeId(oid).native
    for oid in (
        "2.5.29.37.0",  # anyExtendedKeyUsage
        "1.3.6.1.5.5.7.3.4",  # id-kp-emailProtection
        "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning
        "1.2.840.113583.1.1.5",  # Adobe Authentic Documents Trust
        "1.3.6.1.4.1.311.10.3.12",  # Microsoft document signing
    )
)
#: pyHanko's key usage rule for PDF signers (PdfSignatureStatus.key_usage: nonRepudiation)
#: with our key purposes; an extension that is absent, or anyExtendedKeyUsage, restricts
#: nothing (``explicit_extd_key_usage_required=False``). pyHanko's PDF validator cannot be
#: given the purposes itself: it rebuilds the constraints it is given and then requires the
#: extension in every certificate, so the verifier applies them after it.
_DOCUMENT_SIGNING_KEY_USAGE = KeyUsageConstraints(
    key_usage=frozenset(PdfSignatureStatus.key_usage),
    extd_key_usage=_DOCUMENT_SIGNING_PURPOSES,
    explicit_extd_key_usage_required=False,
)
_DOCUMENT_SIGNING_PURPOSES_ONLY = dataclasses.replace(_DOCUMENT_SIGNING_KEY_USAGE, key_usage=None)


def _refuse_other_key_purposes(report: SignatureReport, cert: x509.Certificate) -> SignatureReport:
    """A signature that would pass, by a certificate whose key may not sign documents:
    INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE (EN 319 102-1 5.2.6: the chain does not meet the
    constraints on the signer's certificate). pyHanko's KeyUsageConstraints decide: the key
    purposes (extendedKeyUsage, RFC 5280 4.2.1.12) of every signer, and the key usage of a
    signer with a path above it (pyHanko checked it already where the path validated at the
    validation time, and did not where the certificate is revoked and a proof of existence
    passed the signature; a trust anchor's key usage is :func:`_trust_anchor_signer`'s)."""
    if report.kind is not SignatureKind.SIGNATURE or report.indication is not (
        Indication.TOTAL_PASSED
    ):
        return report
    constraints = (
        _DOCUMENT_SIGNING_PURPOSES_ONLY
        if report.signer_is_trust_anchor
        else _DOCUMENT_SIGNING_KEY_USAGE
    )
    try:
        constraints.validate(cert)
        return report
    except InvalidCertificateError:
        pass
    except Exception as err:  # an extension that cannot be read allows nothing
        return _untrusted(
            report,
            "CHAIN_CONSTRAINTS_FAILURE",
            f"the signer certificate's key usage extensions cannot be read ({type(err).__name__})",
        )
    try:
        _DOCUMENT_SIGNING_PURPOSES_ONLY.validate(cert)
    except InvalidCertificateError:
        purposes = ", ".join(sorted(str(p) for p in cert.extended_key_usage_value.native))
        return _untrusted(
            report,
            "CHAIN_CONSTRAINTS_FAILURE",
            f"the signer certificate's extended key usage ({purposes}) does not allow signing"
            " documents (RFC 5280 4.2.1.12; accepted: "
            + ", ".join(sorted(_DOCUMENT_SIGNING_PURPOSES))
            + ")",
        )
    usage = cert.key_usage_value
    allowed = ", ".join(sorted(usage.native)) if usage is not None else "none"
    return _untrusted(
        report,
        "CHAIN_CONSTRAINTS_FAILURE",
        f"the signer certificate's key usage ({allowed}) does not include non_repudiation,"
        " which a document signature needs",
    )


def _untrusted(report: SignatureReport, sub_indication: str, reason: str) -> SignatureReport:
    """``report`` made INDETERMINATE for a problem of its signer certificate."""
    return dataclasses.replace(
        report,
        indication=Indication.INDETERMINATE,
        sub_indication=sub_indication,
        trusted=False,
        reasons=(
            reason,
            *(r for r in report.reasons if r not in (_PASSED_REASON, _PASSED_AT_POE_REASON)),
        ),
    )


def _revocation_status(report: SignatureReport, mode: RevocationMode) -> RevocationStatus:
    """GOOD only where revocation was checked: a path validated in hard-fail mode had
    revocation data for every certificate that names a revocation service."""
    if report.revoked:
        return RevocationStatus.REVOKED
    if report.signer_is_trust_anchor or report.signer_revocation_service_declared is False:
        return RevocationStatus.NOT_CHECKED
    if report.trusted and mode is RevocationMode.HARD_FAIL:
        return RevocationStatus.GOOD
    return RevocationStatus.UNKNOWN


def _revocation(status: Any) -> tuple[datetime | None, str]:
    details = getattr(status, "revocation_details", None)
    if details is None:
        return None, ""
    try:
        return details.revocation_date, str(details.revocation_reason.native or "")
    except Exception:  # informative only
        return None, ""


def _signature_algorithm(status: Any) -> str:
    try:
        return str(status.pkcs7_signature_mechanism)
    except Exception:
        return ""


def _assign_pades_levels(reports: Sequence[SignatureReport]) -> list[SignatureReport]:
    """EN 319 142-1 baseline levels, only for signatures that did not fail. B-LT needs the
    validation data of this signature in the DSS: revocation data for its own signer
    certificate, not merely any revocation data (that of another signer or CA says nothing),
    and for every CA certificate of its path that names a revocation service (data fetched on
    line during this validation is not in the document; when no path validated, only the
    signer's own data can be looked for)."""
    out: list[SignatureReport] = []
    for report in reports:
        if (
            report.kind is not SignatureKind.SIGNATURE
            or report.indication is (Indication.TOTAL_FAILED)
            or report.subfilter != _PADES_SUBFILTER.lstrip("/")
        ):
            out.append(report)
            continue
        level = PadesLevel.B_B
        if report.timestamp_trusted:
            level = PadesLevel.B_T
        later = [
            r
            for r in reports
            if r.signed_revision is not None
            and report.signed_revision is not None
            and r.signed_revision > report.signed_revision
        ]
        if (
            level is PadesLevel.B_T
            and report.signer_revocation_data_in_dss
            and report.authorities_revocation_data_in_dss is not False
        ):
            level = PadesLevel.B_LT
            if any(
                r.kind is SignatureKind.DOCUMENT_TIMESTAMP
                and r.indication is Indication.TOTAL_PASSED
                for r in later
            ):
                level = PadesLevel.B_LTA
        out.append(dataclasses.replace(report, pades_level=level))
    return out


def _authorities_below_anchor(path: Any) -> list[x509.Certificate]:
    """The CA certificates of a validated path between its trust anchor and its leaf."""
    try:
        certificates = list(path.iter_certs(include_root=False))
    except Exception:  # a path pyhanko-certvalidator cannot walk vouches for nothing
        return []
    return certificates[:-1]


def _declares_revocation_service(cert: x509.Certificate) -> bool | None:
    """Whether ``cert`` names a CRL distribution point or an OCSP responder (RFC 5280 4.2.1.13,
    4.2.2.1), as pyhanko-certvalidator decides whether revocation must be checked; None when
    the extensions cannot be read."""
    try:
        has_crl, has_ocsp = get_declared_revinfo(cert)
    except Exception:
        return None
    return bool(has_crl or has_ocsp)


def _has_revocation_data_for(
    cert: x509.Certificate,
    certificates: Iterable[x509.Certificate],
    *,
    ocsps: Iterable[asn1_ocsp.OCSPResponse],
    crls: Iterable[asn1_crl.CertificateList],
) -> bool:
    """Whether ``ocsps`` or ``crls`` hold revocation data for ``cert``: a CRL issued by its
    issuer (RFC 5280 5.1.2.3, by name), or an OCSP response whose CertID names its serial
    number, its issuer's name and its issuer's key (RFC 6960 4.1.1). The issuer's key is looked
    for among ``certificates`` (a certificate whose subject is ``cert``'s issuer). Presence is
    all this says: whether the data is valid is the path validation's concern."""
    try:
        if any(crl.issuer == cert.issuer for crl in crls):
            return True
        issuer_keys = [c.public_key for c in certificates if c.subject == cert.issuer]
        for response in ocsps:
            for single in _single_responses(response):
                cert_id = single["cert_id"]
                if cert_id["serial_number"].native != cert.serial_number:
                    continue
                algorithm = cert_id["hash_algorithm"]["algorithm"].native
                if cert_id["issuer_name_hash"].native != _digest(algorithm, cert.issuer.dump()):
                    continue
                key_hash = cert_id["issuer_key_hash"].native
                if any(key_hash == _digest(algorithm, bytes(k["public_key"])) for k in issuer_keys):
                    return True
    except Exception:  # malformed revocation data covers nothing
        return False
    return False


def _single_responses(response: asn1_ocsp.OCSPResponse) -> list[asn1_ocsp.SingleResponse]:
    try:
        return list(response.basic_ocsp_response["tbs_response_data"]["responses"])
    except Exception:  # not a successful basic response: it names no certificate
        return []


def _digest(algorithm: str, data: bytes) -> bytes | None:
    try:
        return hashlib.new(algorithm, data).digest()
    except ValueError:  # a hash hashlib does not know matches nothing
        return None


def _signer_identity(cert: x509.Certificate) -> SignerIdentity:
    subject = cert.subject.native
    identifier = str(subject.get("serial_number") or subject.get("organization_identifier") or "")
    match = _SEMANTICS_ID.match(identifier)
    masked = (
        (match.group(1) + mask_identifier(match.group(2)) if match else mask_identifier(identifier))
        if identifier
        else ""
    )
    validity = cert["tbs_certificate"]["validity"]
    return SignerIdentity(
        common_name=" / ".join(name_values(subject, "common_name")),
        organisation=" / ".join(name_values(subject, "organization_name")),
        identifier_masked=masked,
        issuer=_display_name(cert.issuer),
        certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        certificate_serial=format(cert.serial_number, "x"),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
    )


def _display_name(name: x509.Name) -> str:
    """A name for reports: its common name (else organisation), never the serialNumber with a
    national identifier in it (DESIGN.md: identifiers appear masked only)."""
    native = name.native
    values = name_values(native, "common_name") or name_values(native, "organization_name")
    text = " / ".join(values)
    return mask_text(text)


def _split_pem(blob: bytes) -> list[bytes]:
    if b"-----BEGIN" not in blob:
        return [blob]
    parts = re.findall(
        rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", blob, flags=re.S
    )
    return list(parts)


def _pem_to_der(blob: bytes) -> bytes:
    if blob.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        _, _, der = pem.unarmor(blob)
        return bytes(der)
    return blob
