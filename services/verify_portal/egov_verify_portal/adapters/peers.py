"""The signing and registry services over gRPC, answering in the portal's report values.

One ``VerifyDocument`` call (with the ETSI XML) validates the signatures; the registry is asked
directly (``LookupByHash`` / ``GetDocument``) and its inclusion proof for the document's
current status is checked here, in the portal's back end, so a relying party need not trust
the registry server's word.

One page has one deadline: every call made for it (signing, and each registry call of the
lookup and of the proof check) gets what is left of ``timeout`` seconds from the page's start,
and none is retried, so a hung peer costs a visitor ``timeout`` seconds, not a multiple of it.

Text from certificates and from the registry is shown to anyone: it is cut to
``MAX_SHOWN_CHARS`` here, and identifiers in the registry's free text are masked here.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

import grpc
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_clients.registry import LogVerificationError, RegistryClient, deciding_entry
from egov_common.clock import Clock, SystemClock
from egov_common.deadlines import deadline_scope, remaining
from egov_common.errors import Code, EgovError
from egov_common.logging import mask_identifier, mask_text
from egov_common.status import from_rpc_error
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..domain.report import (
    ProofCheck,
    RegistryEntry,
    RegistryFinding,
    RegistryStatus,
    SignatureFinding,
    Verdict,
    VerificationReport,
    clipped,
    is_document_id,
)
from ..domain.services import (
    DocumentNotFound,
    DocumentRejected,
    PeerUnavailable,
    RejectionReason,
)
from .proofs import InclusionChecker

log = logging.getLogger("egov_verify_portal.peers")

CHUNK_BYTES = 1024 * 1024
_UNAVAILABLE = {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED, Code.RESOURCE_EXHAUSTED}
_REJECTIONS = {
    "PDF_MALFORMED": RejectionReason.BROKEN_PDF,
    "PDF_ENCRYPTED": RejectionReason.ENCRYPTED,
    "PDF_TOO_LARGE": RejectionReason.TOO_LARGE,
    "PDF_EMPTY": RejectionReason.EMPTY,
    "PDF_TOO_MANY_PAGES": RejectionReason.TOO_COMPLEX,
    "PDF_TOO_MANY_SIGNATURES": RejectionReason.TOO_COMPLEX,
}


class GrpcTrustServices:
    """``TrustServices`` over two gRPC channels (opened by the caller, e.g. egov_common).

    ``timeout``: seconds one page may spend on its peers in all (see the module docstring).
    """

    def __init__(
        self,
        signing: grpc.Channel,
        registry: grpc.Channel,
        *,
        timeout: float,
        log_key_pem: bytes | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._signing_channel = signing
        self._registry_channel = registry
        self._signing = signing_pb2_grpc.SigningServiceStub(signing)
        # No retries: a retry of a call that ran out of time would find no time left. Each
        # call gets at most what is left of the page's deadline (deadline_scope): the client
        # cuts its own timeout to it, as open_channel's DeadlineInterceptor does.
        self._registry = RegistryClient(
            registry,
            log_key=log_key_pem,
            deadline=timeout,
            max_attempts=1,
        )
        self._timeout = timeout
        self._inclusion = InclusionChecker(self._registry)
        self._clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="registry-lookup")

    # ---- TrustServices -----------------------------------------------------------------------

    def verify(self, pdf: bytes, file_name: str, *, language: str) -> VerificationReport:
        digest = hashlib.sha256(pdf).digest()
        with deadline_scope(self._timeout):
            # the lookup runs beside the signing call, under the same page deadline
            lookup = contextvars.copy_context()
            registry_future = self._pool.submit(lookup.run, self._registry_for_hash, digest)
            try:
                response = self._signing.VerifyDocument(
                    _verify_requests(pdf, language), timeout=_time_left()
                )
            except grpc.RpcError as err:
                registry_future.cancel()
                raise _signing_error(err) from None
            registry = _registry_result(registry_future)
        return _report(response, file_name, pdf, registry, self._clock.now())

    def registry_entry(self, document_id: str) -> RegistryFinding:
        with deadline_scope(self._timeout):
            try:
                document = self._registry.get_document(document_id)
            except EgovError as error:
                if error.code in (Code.NOT_FOUND, Code.INVALID_ARGUMENT):
                    raise DocumentNotFound(document_id) from None
                raise PeerUnavailable(f"registry: {error}") from None
            except LogVerificationError as error:  # the answer was about another document
                return _refused_answer(error)
            return self._finding(document)

    def peers_ready(self) -> dict[str, bool]:
        return {
            "signing": _serving(self._signing_channel),
            "registry": _serving(self._registry_channel),
        }

    # ---- registry ----------------------------------------------------------------------------

    def _registry_for_hash(self, digest: bytes) -> RegistryFinding:
        try:
            documents = self._registry.lookup_by_hash(digest)
        except EgovError as error:
            log.warning("registry lookup failed: %s", error)
            return RegistryFinding(status=RegistryStatus.UNAVAILABLE)
        except LogVerificationError as error:  # the answer was about another digest
            return _refused_answer(error)
        if not documents:
            return RegistryFinding(status=RegistryStatus.NOT_REGISTERED)
        return self._finding(deciding_entry(documents))

    def _finding(self, document: registry_pb2.Document) -> RegistryFinding:
        entry = _entry(document)
        check = self._inclusion.check(document)
        return RegistryFinding(
            status=entry.status,
            entry=entry,
            proof=check.result,
            proof_detail=check.detail,
            tree_size=check.tree_size,
        )


def _time_left() -> float:
    """Seconds left of the page's deadline (inside ``deadline_scope``)."""
    return max(remaining() or 0.0, 0.0)


def _registry_result(future: Future[RegistryFinding]) -> RegistryFinding:
    """The lookup's finding; unavailable if it did not finish in the page's time (its calls
    end by then, but it may still be queued behind other pages' lookups)."""
    try:
        # a moment more than the calls' own deadline, for the proof check's arithmetic
        return future.result(timeout=_time_left() + 1.0)
    except FutureTimeout:
        future.cancel()
        log.warning("registry lookup did not finish in the page's time")
        return RegistryFinding(status=RegistryStatus.UNAVAILABLE)


def _shown_registry_text(text: str) -> str:
    """Free text written by an issuer (titles, reasons, names): identifiers masked, cut."""
    return clipped(mask_text(text))


def _refused_answer(error: LogVerificationError) -> RegistryFinding:
    """The registry answered another question than the one asked: nothing of it is shown,
    and the log check is FAILED, as for an answer whose proof does not verify."""
    log.warning("registry answer refused: %s", error)
    return RegistryFinding(
        status=RegistryStatus.UNAVAILABLE, proof=ProofCheck.FAILED, proof_detail=str(error)
    )


def _verify_requests(pdf: bytes, language: str) -> Iterator[signing_pb2.VerifyDocumentRequest]:
    # The portal asks the registry itself (and checks the proof), so signing need not.
    options = signing_pb2.VerifyOptions(
        language=language, include_etsi_xml=True, skip_registry=True
    )
    yield signing_pb2.VerifyDocumentRequest(options=options)
    for start in range(0, len(pdf), CHUNK_BYTES):
        yield signing_pb2.VerifyDocumentRequest(chunk=pdf[start : start + CHUNK_BYTES])


def _signing_error(err: grpc.RpcError) -> Exception:
    error: EgovError = from_rpc_error(err)
    if error.code in _UNAVAILABLE:
        return PeerUnavailable(f"signing: {error}")
    rejection = _REJECTIONS.get(error.reason)
    if rejection is not None:
        return DocumentRejected(rejection, error.message)
    if error.code is Code.INVALID_ARGUMENT:
        return DocumentRejected(RejectionReason.BROKEN_PDF, error.message)
    log.warning("signing refused the document: %s", error)
    return PeerUnavailable(f"signing: {error}")


def _serving(channel: grpc.Channel) -> bool:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2.0
        )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


# ---- proto -> report values ----------------------------------------------------------------


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def _enum_name(enum_type: Any, value: int, prefix: str) -> str:
    try:
        name: str = enum_type.Name(value)
    except ValueError:
        return ""
    name = name.removeprefix(prefix)
    return "" if name == "UNSPECIFIED" else name


def _party(party: party_pb2.PartyIdentifier) -> str:
    if not party.value:
        return ""
    namespace = _enum_name(party_pb2.IdentifierNamespace, party.namespace, "IDENTIFIER_NAMESPACE_")
    label = namespace.replace("_", "-")
    value = party.value if namespace == "TH_JUR" else mask_identifier(party.value)
    return clipped(f"{label} {value}".strip())


def _common_name(name: str) -> str:
    """``Common Name: X, Organization: Y`` (asn1crypto's human form) -> ``X``; else as is."""
    prefix = "Common Name: "
    if name.startswith(prefix):
        return name[len(prefix) :].split(", ", 1)[0]
    return name


_ALLOWED_MODIFICATIONS = {"", "NONE", "LTA_UPDATES", "FORM_FILLING", "ANNOTATIONS"}


def _signature(sig: signing_pb2.SignatureReport) -> SignatureFinding:
    indication = _enum_name(signing_pb2.Indication, sig.indication, "INDICATION_")
    sub = _enum_name(signing_pb2.SubIndication, sig.sub_indication, "SUB_INDICATION_")
    coverage = _enum_name(signing_pb2.Coverage, sig.coverage, "COVERAGE_")
    modification = _enum_name(
        signing_pb2.ModificationLevel, sig.modification_level, "MODIFICATION_LEVEL_"
    )
    trusted_time = _time(sig, "timestamp_time")
    issuer = _common_name(sig.signer.issuer or (sig.chain[1] if len(sig.chain) > 1 else ""))
    revocation = _enum_name(
        signing_pb2.RevocationStatus, sig.revocation_status, "REVOCATION_STATUS_"
    )
    if revocation == "REVOKED" and sig.revocation_reason:
        revocation = f"REVOKED ({clipped(sig.revocation_reason)})"
    return SignatureFinding(
        field_name=sig.field_name,
        is_document_timestamp=sig.kind == signing_pb2.SIGNATURE_KIND_DOCUMENT_TIMESTAMP,
        verdict=Verdict.from_indication(indication),
        indication=indication,
        sub_indication=sub,
        reason=clipped(sig.reason),
        signer_name=clipped(sig.signer.name),
        signer_organisation=clipped(sig.signer.organization),
        signer_identifier_masked=clipped(sig.signer.masked_identifier),
        signed_at=trusted_time or _time(sig, "claimed_signing_time"),
        time_is_trusted=trusted_time is not None,
        covers_whole_document=coverage == "ENTIRE_FILE",
        coverage=coverage,
        modifications=modification,
        modifications_allowed=modification in _ALLOWED_MODIFICATIONS
        and sub != "ILLEGAL_MODIFICATIONS",
        certificate_subject=clipped(sig.signer.name),
        certificate_issuer=clipped(issuer),
        certificate_valid_from=None,
        certificate_valid_until=None,
        certificate_trusted=sig.trusted,
        revocation_status=revocation,
        pades_level=_enum_name(crypto_pb2.PadesLevel, sig.pades_level, "PADES_LEVEL_").replace(
            "_", "-"
        ),
        certified=sig.certification != signing_pb2.DOC_MDP_PERMISSION_UNSPECIFIED,
    )


def _report(
    response: signing_pb2.VerifyDocumentResponse,
    file_name: str,
    pdf: bytes,
    registry: RegistryFinding,
    now: datetime,
) -> VerificationReport:
    report = response.report
    indication = _enum_name(signing_pb2.Indication, report.indication, "INDICATION_")
    sub = _enum_name(signing_pb2.SubIndication, report.sub_indication, "SUB_INDICATION_")
    return VerificationReport(
        file_name=file_name,
        file_size=len(pdf),
        sha256_hex=hashlib.sha256(pdf).hexdigest(),
        checked_at=_time(report, "validation_time") or now,
        signatures_verdict=Verdict.from_indication(indication),
        signatures_indication=indication,
        signatures_sub_indication=sub or clipped(report.reason),
        signatures=tuple(_signature(s) for s in report.signatures),
        registry=registry,
        etsi_xml=bytes(response.etsi_xml),
        notes=tuple(clipped(problem) for problem in report.problems),
        unsigned_content_after_last_signature=report.unsigned_content_after_last_signature,
    )


def _entry(document: registry_pb2.Document) -> RegistryEntry:
    status = {
        registry_pb2.DOCUMENT_STATUS_REGISTERED: RegistryStatus.REGISTERED,
        registry_pb2.DOCUMENT_STATUS_REVOKED: RegistryStatus.REVOKED,
        registry_pb2.DOCUMENT_STATUS_SUPERSEDED: RegistryStatus.SUPERSEDED,
    }.get(document.status, RegistryStatus.NOT_REGISTERED)
    reason, reason_code, revoked_at = "", "", None
    for change in reversed(document.history):
        if change.status == registry_pb2.DOCUMENT_STATUS_REVOKED:
            reason = change.reason_text
            reason_code = _enum_name(
                registry_pb2.RevocationReason, change.reason, "REVOCATION_REASON_"
            )
            revoked_at = _time(change, "changed_at")
            break
    metadata = dict(document.metadata)
    # Whatever an issuer wrote is shown to anyone who has the link: no identifier in clear.
    issuer_name = mask_text(metadata.get("issuer_name_th") or metadata.get("issuer_name", ""))
    issuer_id = _party(document.issuer)
    issuer = f"{issuer_name} ({issuer_id})" if issuer_name and issuer_id else issuer_name
    superseded_by = document.superseded_by
    return RegistryEntry(
        document_id=clipped(document.document_id),
        issuer=clipped(issuer or issuer_id),
        document_type=_shown_registry_text(document.document_type),
        title=_shown_registry_text(metadata.get("title_th") or metadata.get("title", "")),
        subject_reference=_party(document.subject),
        sha256_hex=document.sha256.hex(),
        registered_at=_time(document, "registered_at"),
        valid_from=_time(document, "valid_from"),
        valid_until=_time(document, "valid_until"),
        status=status,
        revocation_reason=_shown_registry_text(reason),
        revocation_reason_code=reason_code,
        revoked_at=revoked_at,
        # a link on the page: only an id of the registry's own form
        superseded_by=superseded_by if is_document_id(superseded_by) else "",
    )
