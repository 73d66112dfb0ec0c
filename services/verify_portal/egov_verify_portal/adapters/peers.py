"""The signing and registry services over gRPC, answering in the portal's report values.

One ``VerifyDocument`` call (with the ETSI XML) validates the signatures; the registry is asked
directly (``LookupByHash`` / ``GetDocument``) and its inclusion proof for the document's
current status is checked here, in the portal's back end, so a relying party need not trust
the registry server's word.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import grpc
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_clients.registry import LogVerificationError, RegistryClient, deciding_entry
from egov_common.clock import Clock, SystemClock
from egov_common.errors import Code, EgovError
from egov_common.logging import mask_identifier
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
    """``TrustServices`` over two gRPC channels (opened by the caller, e.g. egov_common)."""

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
        self._registry = RegistryClient(registry, log_key=log_key_pem, deadline=timeout)
        self._timeout = timeout
        self._inclusion = InclusionChecker(self._registry)
        self._clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="registry-lookup")

    # ---- TrustServices -----------------------------------------------------------------------

    def verify(self, pdf: bytes, file_name: str, *, language: str) -> VerificationReport:
        digest = hashlib.sha256(pdf).digest()
        registry_future = self._pool.submit(self._registry_for_hash, digest)
        try:
            response = self._signing.VerifyDocument(
                _verify_requests(pdf, language), timeout=self._timeout
            )
        except grpc.RpcError as err:
            registry_future.cancel()
            raise _signing_error(err) from None
        registry = registry_future.result()
        return _report(response, file_name, pdf, registry, self._clock.now())

    def registry_entry(self, document_id: str) -> RegistryFinding:
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
    return f"{label} {value}".strip()


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
        revocation = f"REVOKED ({sig.revocation_reason})"
    return SignatureFinding(
        field_name=sig.field_name,
        is_document_timestamp=sig.kind == signing_pb2.SIGNATURE_KIND_DOCUMENT_TIMESTAMP,
        verdict=Verdict.from_indication(indication),
        indication=indication,
        sub_indication=sub,
        reason=sig.reason,
        signer_name=sig.signer.name,
        signer_organisation=sig.signer.organization,
        signer_identifier_masked=sig.signer.masked_identifier,
        signed_at=trusted_time or _time(sig, "claimed_signing_time"),
        time_is_trusted=trusted_time is not None,
        covers_whole_document=coverage == "ENTIRE_FILE",
        coverage=coverage,
        modifications=modification,
        modifications_allowed=modification in _ALLOWED_MODIFICATIONS
        and sub != "ILLEGAL_MODIFICATIONS",
        certificate_subject=sig.signer.name,
        certificate_issuer=issuer,
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
        signatures_sub_indication=sub or report.reason,
        signatures=tuple(_signature(s) for s in report.signatures),
        registry=registry,
        etsi_xml=bytes(response.etsi_xml),
        notes=tuple(report.problems),
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
    issuer_name = metadata.get("issuer_name_th") or metadata.get("issuer_name", "")
    issuer_id = _party(document.issuer)
    return RegistryEntry(
        document_id=document.document_id,
        issuer=f"{issuer_name} ({issuer_id})" if issuer_name else issuer_id,
        document_type=document.document_type,
        title=metadata.get("title_th") or metadata.get("title", ""),
        subject_reference=_party(document.subject),
        sha256_hex=document.sha256.hex(),
        registered_at=_time(document, "registered_at"),
        valid_from=_time(document, "valid_from"),
        valid_until=_time(document, "valid_until"),
        status=status,
        revocation_reason=reason,
        revocation_reason_code=reason_code,
        revoked_at=revoked_at,
        superseded_by=document.superseded_by,
    )
