"""egov.signing.v1.SigningService: proto -> domain call -> proto; no business logic here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol, cast

import grpc
from egov.signing.v1 import signing_pb2 as pb
from egov.signing.v1 import signing_pb2_grpc
from egov.type.v1 import crypto_pb2, errors_pb2, party_pb2
from egov_clients import registration_rules
from egov_common import deadlines
from egov_common.clock import request_time
from egov_common.errors import EgovError, FieldViolation, InvalidArgument
from google.protobuf import timestamp_pb2

from .adapters.registry import RegistryCheckResult, RegistryStatus
from .domain.pdf_input import DocumentLimits, check_size
from .domain.ports import Party, RegistrationSpec, RegistryPort
from .domain.report import (
    Coverage,
    DocumentVerdict,
    Indication,
    PadesLevel,
    RevocationStatus,
    SignatureKind,
    SignatureReport,
    ValidationReport,
    document_verdict,
)
from .domain.report_formats import summary_text, to_etsi_xml
from .domain.signing import (
    BatchItem,
    Level,
    PdfSigningService,
    RegistrationStatus,
    SignedDocument,
    SignOptions,
)
from .domain.stamp import StampSpec
from .domain.verification import DocumentVerifier
from .spool import Spool, SpoolDirectory

__all__ = ["SigningServicer"]

log = logging.getLogger(__name__)

#: size of the signed PDF's pieces in the response stream (each is read from the spool, copied
#: into a message and serialised: a smaller piece keeps the transient copies small)
CHUNK_BYTES = 256 * 1024
#: after a document at least this large, free memory goes back to the OS at once
LARGE_DOCUMENT_BYTES = 4 * 1024 * 1024

_LEVELS = {
    crypto_pb2.PADES_LEVEL_B_B: Level.B_B,
    crypto_pb2.PADES_LEVEL_B_T: Level.B_T,
    crypto_pb2.PADES_LEVEL_B_LT: Level.B_LT,
    crypto_pb2.PADES_LEVEL_B_LTA: Level.B_LTA,
}
_LEVELS_PB = {level: number for number, level in _LEVELS.items()}
_CERTIFICATIONS = {
    pb.DOC_MDP_PERMISSION_UNSPECIFIED: None,
    pb.DOC_MDP_PERMISSION_NO_CHANGES: 1,
    pb.DOC_MDP_PERMISSION_FORM_FILLING: 2,
    pb.DOC_MDP_PERMISSION_ANNOTATIONS: 3,
}
_STAMP_LANGUAGES = ("th", "en")
_REPORT_LEVELS_PB = {
    PadesLevel.B_B: crypto_pb2.PADES_LEVEL_B_B,
    PadesLevel.B_T: crypto_pb2.PADES_LEVEL_B_T,
    PadesLevel.B_LT: crypto_pb2.PADES_LEVEL_B_LT,
    PadesLevel.B_LTA: crypto_pb2.PADES_LEVEL_B_LTA,
}
_NAMESPACES = {
    party_pb2.IDENTIFIER_NAMESPACE_TH_PID: "TH-PID",
    party_pb2.IDENTIFIER_NAMESPACE_TH_JUR: "TH-JUR",
    party_pb2.IDENTIFIER_NAMESPACE_PASSPORT: "PASSPORT",
}
_REGISTRATION_PB = {
    RegistrationStatus.NOT_REQUESTED: pb.REGISTRATION_STATUS_NOT_REQUESTED,
    RegistrationStatus.REGISTERED: pb.REGISTRATION_STATUS_REGISTERED,
    RegistrationStatus.UNREGISTERED: pb.REGISTRATION_STATUS_UNREGISTERED,
}
_INDICATION_PB = {
    Indication.TOTAL_PASSED: pb.INDICATION_TOTAL_PASSED,
    Indication.TOTAL_FAILED: pb.INDICATION_TOTAL_FAILED,
    Indication.INDETERMINATE: pb.INDICATION_INDETERMINATE,
}
_COVERAGE_PB = {
    Coverage.ENTIRE_FILE: pb.COVERAGE_ENTIRE_FILE,
    Coverage.ENTIRE_REVISION: pb.COVERAGE_ENTIRE_REVISION,
    Coverage.PARTIAL: pb.COVERAGE_PARTIAL,
}
_REVOCATION_STATUS_PB = {
    RevocationStatus.GOOD: pb.REVOCATION_STATUS_GOOD,
    RevocationStatus.REVOKED: pb.REVOCATION_STATUS_REVOKED,
    RevocationStatus.NOT_CHECKED: pb.REVOCATION_STATUS_NOT_CHECKED,
    RevocationStatus.UNKNOWN: pb.REVOCATION_STATUS_UNKNOWN,
}
_REGISTRY_PB = {
    RegistryStatus.REGISTERED: pb.REGISTRY_CHECK_STATUS_REGISTERED,
    RegistryStatus.REVOKED: pb.REGISTRY_CHECK_STATUS_REVOKED,
    RegistryStatus.SUPERSEDED: pb.REGISTRY_CHECK_STATUS_SUPERSEDED,
    RegistryStatus.UNKNOWN: pb.REGISTRY_CHECK_STATUS_UNKNOWN,
    RegistryStatus.NOT_CHECKED: pb.REGISTRY_CHECK_STATUS_NOT_CHECKED,
}


class RegistryChecker(Protocol):
    def check(self, sha256: bytes) -> RegistryCheckResult: ...


class TokenBoundRegistry(Protocol):
    def with_token(self, token: str) -> RegistryPort: ...


def _ts(when: datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when.astimezone(UTC).replace(tzinfo=None))
    return stamp


def _bearer_token(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def _receive(
    requests: Iterable[Any], limits: DocumentLimits, spool: Spool, *, options_required: bool
) -> Any:
    """Options (first message); the PDF chunks go to ``spool``, the size limit enforced before
    each chunk is kept."""
    options = None
    for n, message in enumerate(requests):
        kind = message.WhichOneof("part")
        if kind == "options":
            if n != 0:
                raise InvalidArgument("OPTIONS_NOT_FIRST", "options must be the first message")
            options = message.options
        elif kind == "chunk":
            chunk = message.chunk
            check_size(spool.size + len(chunk), limits)
            spool.write(chunk)
    if options is None and options_required:
        raise InvalidArgument("OPTIONS_MISSING", "the first message must carry options")
    if spool.size == 0:
        raise InvalidArgument("PDF_EMPTY", "no PDF bytes were sent")
    return options


def _pdf_chunks(document: BinaryIO) -> Iterator[pb.SignDocumentResponse]:
    document.seek(0)
    while chunk := document.read(CHUNK_BYTES):
        yield pb.SignDocumentResponse(chunk=chunk)


def _party_string(identifier: party_pb2.PartyIdentifier) -> tuple[str, str]:
    """(namespace, value); the namespace empty when unspecified or unknown, as the registry
    reads it."""
    return _NAMESPACES.get(identifier.namespace, ""), identifier.value


def _party(identifier: str) -> Party:
    namespace, _, value = identifier.partition(":")
    return Party(namespace, value)


def _registration(request: pb.RegistrationRequest, field: str) -> RegistrationSpec:
    """The registration asked for, checked as the registry will check it (its own rules, in
    its order, with its reasons), so that one it would refuse is refused before the owner's
    authorisation is spent on signing. Identifiers come back in the registry's normal form."""
    prefix = f"{field}."
    issuer = registration_rules.normalise_issuer(*_party_string(request.issuer), prefix + "issuer")
    subject = registration_rules.registration_subject(
        *_party_string(request.subject),
        given=request.HasField("subject"),
        field=prefix + "subject",
    )
    spec = RegistrationSpec(
        issuer=_party(issuer),
        document_type=request.document_type,
        idempotency_key=request.idempotency_key,
        subject=_party(subject) if subject else None,
        valid_from=_time_if_set(request, "valid_from", prefix),
        valid_until=_time_if_set(request, "valid_until", prefix),
        metadata=dict(request.metadata),
        request_field=field,
    )
    registration_rules.check_registration_fields(
        idempotency_key=spec.idempotency_key,
        document_type=spec.document_type,
        metadata=spec.metadata,
        valid_from_ms=_ms(spec.valid_from),
        valid_until_ms=_ms(spec.valid_until),
        registered_at_ms=_ms(datetime.now(UTC)),
        prefix=prefix,
    )
    return spec


def _time_if_set(request: pb.RegistrationRequest, name: str, prefix: str) -> datetime | None:
    if not request.HasField(name):
        return None
    return request_time(getattr(request, name), field=prefix + name, reason="VALIDITY_INVALID")


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else registration_rules.epoch_ms(moment)


def _sign_options(options: pb.SignOptions, caller_token: str, *, batch: bool) -> SignOptions:
    level = _LEVELS.get(options.level)
    if level is None:
        raise InvalidArgument(
            "LEVEL_MISSING",
            "a PAdES level is required",
            field_violations=(FieldViolation("options.level", "B_B, B_T, B_LT or B_LTA"),),
        )
    if not options.credential_id:
        raise InvalidArgument(
            "CREDENTIAL_MISSING",
            "a credential id is required",
            field_violations=(FieldViolation("options.credential_id", "required"),),
        )
    if options.certification not in _CERTIFICATIONS:
        raise InvalidArgument(
            "CERTIFICATION_INVALID",
            "unknown DocMDP permission",
            field_violations=(
                FieldViolation("options.certification", "NO_CHANGES, FORM_FILLING or ANNOTATIONS"),
            ),
        )
    stamp = None
    if options.HasField("stamp"):
        box = None
        if options.stamp.HasField("box"):
            b = options.stamp.box
            box = (b.x1, b.y1, b.x2, b.y2)
        language = options.stamp.language or "th"
        if language not in _STAMP_LANGUAGES:
            raise InvalidArgument(
                "STAMP_LANGUAGE_INVALID",
                "the stamp's language is th or en",
                field_violations=(FieldViolation("options.stamp.language", "th or en"),),
            )
        stamp = StampSpec(
            page=options.stamp.page,
            box=box,
            language=language,
            include_qr_code=options.stamp.include_qr_code,
        )
    registration = None
    if options.HasField("registration") and not batch:
        registration = _registration(options.registration, "options.registration")
    return SignOptions(
        credential_id=options.credential_id,
        level=level,
        # an e-seal has no owner's token: the calling service client's bearer token is the proof
        authorization_proof=options.authorization_proof or caller_token,
        field_name=options.field_name,
        reason=options.reason,
        location=options.location,
        contact_info=options.contact_info,
        certification=_CERTIFICATIONS[options.certification],
        stamp=stamp,
        registration=registration,
        # without the caller's token the registry would hear signing's own authority
        registry_on_own_authority=not caller_token,
    )


def _item_error(error: EgovError, *, with_fields: bool = False) -> errors_pb2.ItemError:
    """``error`` as one item's outcome; ``with_fields``: the request fields at fault (an
    ItemError has no BadRequest of its own) named in the message. So is the document the
    registry's error names in its metadata (an ItemError has none): a signing that lost the race
    for its idempotency key learns which document the key registered."""
    message = error.message
    if with_fields and error.field_violations:
        message += " (" + ", ".join(v.field for v in error.field_violations) + ")"
    document_id = error.metadata.get("document_id", "")
    if document_id and document_id not in message:
        message += f" (document_id {document_id})"
    return errors_pb2.ItemError(code=error.code.value, reason=error.reason, message=message)


def _answer_bytes_refused(request: pb.SignDocumentsRequest, refused: dict[int, EgovError]) -> int:
    """What the results of documents refused before signing take of the answer (at most)."""
    return sum(
        256 + len(request.documents[n].client_reference.encode()) + len(error.message.encode())
        for n, error in refused.items()
    )


def _sign_result(signed: SignedDocument) -> pb.SignResult:
    result = pb.SignResult(
        sha256=signed.sha256,
        size_bytes=signed.size_bytes,
        level=_LEVELS_PB[signed.level],
        field_name=signed.field_name,
        registration_status=_REGISTRATION_PB[signed.registration_status],
        document_id=signed.document_id,
        verification_url=signed.verification_url,
        signing_time=_ts(signed.signing_time),
    )
    if signed.registration_error is not None:
        result.registration_error.CopyFrom(_item_error(signed.registration_error))
    return result


def _sub_indication(name: str | None) -> pb.SubIndication:
    if not name:
        return pb.SUB_INDICATION_UNSPECIFIED
    return cast(pb.SubIndication, getattr(pb, f"SUB_INDICATION_{name}", 0))


def _signature_pb(sig: SignatureReport) -> pb.SignatureReport:
    out = pb.SignatureReport(
        field_name=sig.field_name,
        kind=(
            pb.SIGNATURE_KIND_DOCUMENT_TIMESTAMP
            if sig.kind is SignatureKind.DOCUMENT_TIMESTAMP
            else pb.SIGNATURE_KIND_SIGNATURE
        ),
        indication=_INDICATION_PB[sig.indication],
        sub_indication=_sub_indication(sig.sub_indication),
        reason="; ".join(sig.reasons[:2]),
        intact=sig.intact,
        valid=sig.valid,
        trusted=sig.trusted,
        coverage=_COVERAGE_PB.get(sig.coverage, pb.COVERAGE_UNSPECIFIED),
        modification_level=cast(
            pb.ModificationLevel,
            getattr(pb, f"MODIFICATION_LEVEL_{sig.modification_level}", 0)
            if sig.modification_level
            else 0,
        ),
        docmdp_ok=bool(sig.docmdp_ok),
        certification=cast(pb.DocMdpPermission, sig.certification_level or 0),
        pades_level=_REPORT_LEVELS_PB.get(sig.pades_level, crypto_pb2.PADES_LEVEL_UNSPECIFIED),
        subfilter=sig.subfilter,
        digest_algorithm=sig.digest_algorithm,
        signature_algorithm=sig.signature_algorithm,
        revocation_status=_REVOCATION_STATUS_PB[sig.revocation_status],
        chain=list(sig.certificate_path),
        signed_revision=sig.signed_revision or 0,
        revocation_reason=sig.revocation_reason,
    )
    if sig.signer is not None:
        out.signer.CopyFrom(
            pb.Signer(
                name=sig.signer.common_name,
                organization=sig.signer.organisation,
                masked_identifier=sig.signer.identifier_masked,
                issuer=sig.signer.issuer,
                certificate_sha256=bytes.fromhex(sig.signer.certificate_sha256),
                certificate_serial=sig.signer.certificate_serial,
            )
        )
    for field, value in (
        ("claimed_signing_time", sig.claimed_signing_time),
        ("timestamp_time", sig.timestamp_time if sig.timestamp_trusted else None),
        ("revoked_at", sig.revoked_at),
    ):
        stamp = _ts(value)
        if stamp is not None:
            getattr(out, field).CopyFrom(stamp)
    return out


def _report_pb(
    report: ValidationReport,
    registry: RegistryCheckResult,
    verdict: DocumentVerdict,
) -> pb.ValidationReport:
    out = pb.ValidationReport(
        indication=_INDICATION_PB[verdict.indication],
        sub_indication=_sub_indication(verdict.sub_indication),
        reason=verdict.reason,
        sha256=bytes.fromhex(report.document_sha256),
        size_bytes=report.document_size,
        revision_count=report.revisions,
        signatures=[_signature_pb(s) for s in report.signatures],
        unsigned_content_after_last_signature=verdict.unsigned_content_after_last_signature,
        validation_time=_ts(report.validation_time),
        problems=list(report.notes),
    )
    check = pb.RegistryCheck(
        status=_REGISTRY_PB[registry.status],
        inclusion_verified=registry.inclusion_verified,
        problem=registry.problem,
    )
    if registry.document is not None:
        check.document.CopyFrom(registry.document)
    out.registry.CopyFrom(check)
    return out


class SigningServicer(signing_pb2_grpc.SigningServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(
        self,
        signing: PdfSigningService,
        verifier: Callable[[], DocumentVerifier],
        *,
        limits: DocumentLimits,
        registry: TokenBoundRegistry | None = None,
        registry_checker: RegistryChecker | None = None,
        max_batch_documents: int = 100,
        spools: SpoolDirectory | None = None,
        after_large_document: Callable[[], None] | None = None,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._signing = signing
        self._verifier = verifier
        self._limits = limits
        self._registry = registry
        self._checker = registry_checker
        self._max_batch = max_batch_documents
        self._spools = spools or SpoolDirectory()
        self._after_large = after_large_document
        # gRPC refuses to send a larger answer, after everything in it was signed
        self._max_answer = max_message_bytes

    def _done_with(self, spool: Spool) -> None:
        spool.close()
        if self._after_large is not None and spool.size >= LARGE_DOCUMENT_BYTES:
            self._after_large()

    def _registry_for(self, context: grpc.ServicerContext) -> RegistryPort | None:
        if self._registry is None:
            return None
        return self._registry.with_token(_bearer_token(context))

    def SignDocument(
        self, request_iterator: Iterator[pb.SignDocumentRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SignDocumentResponse]:
        # the upload is signed in place in its spool and streamed back from it; the spool is
        # closed however the call ends (a cancelled or expired call closes this generator)
        spool = self._spools.open()
        try:
            options = _receive(request_iterator, self._limits, spool, options_required=True)
            sign_options = _sign_options(options, _bearer_token(context), batch=False)
            signed = self._signing.sign(
                spool.stream, sign_options, registry=self._registry_for(context)
            )
            log.info(
                "document signed",
                extra={
                    "level": signed.level.value,
                    "size_bytes": signed.size_bytes,
                    "registration": signed.registration_status.value,
                    "document_id": signed.document_id,
                },
            )
            yield pb.SignDocumentResponse(result=_sign_result(signed))
            yield from _pdf_chunks(signed.document)
        finally:
            self._done_with(spool)

    def SignDocuments(
        self, request: pb.SignDocumentsRequest, context: grpc.ServicerContext
    ) -> pb.SignDocumentsResponse:
        if not request.HasField("options"):
            raise InvalidArgument("OPTIONS_MISSING", "options are required")
        if not request.documents:
            raise InvalidArgument("BATCH_EMPTY", "no documents to sign")
        if len(request.documents) > self._max_batch:
            raise InvalidArgument(
                "BATCH_TOO_LARGE",
                f"at most {self._max_batch} documents per call",
                metadata={"max_documents": str(self._max_batch)},
            )
        options = _sign_options(request.options, _bearer_token(context), batch=True)
        items: list[BatchItem] = []
        refused: dict[int, EgovError] = {}
        for n, doc in enumerate(request.documents):
            try:
                registration = (
                    _registration(doc.registration, f"documents[{n}].registration")
                    if doc.HasField("registration")
                    else None
                )
            except EgovError as error:
                # that document alone fails, before anything of it is reserved or signed
                refused[n] = error
            else:
                items.append(BatchItem(doc.client_reference, doc.pdf, registration))
        outcomes = iter(
            self._signing.sign_batch(
                items,
                options,
                registry=self._registry_for(context),
                max_answer_bytes=self._max_answer - _answer_bytes_refused(request, refused),
            )
        )
        results = []
        for n, doc in enumerate(request.documents):
            if n in refused:
                results.append(
                    pb.BatchResult(
                        client_reference=doc.client_reference,
                        error=_item_error(refused[n], with_fields=True),
                    )
                )
                continue
            outcome = next(outcomes)
            result = pb.BatchResult(client_reference=outcome.client_reference)
            if outcome.signed is not None:
                result.result.CopyFrom(_sign_result(outcome.signed))
                result.signed_pdf = outcome.signed.pdf
            elif outcome.error is not None:
                result.error.CopyFrom(_item_error(outcome.error))
            results.append(result)
        return pb.SignDocumentsResponse(results=results)

    def VerifyDocument(
        self, request_iterator: Iterator[pb.VerifyDocumentRequest], context: grpc.ServicerContext
    ) -> pb.VerifyDocumentResponse:
        spool = self._spools.open()
        try:
            options = _receive(request_iterator, self._limits, spool, options_required=False)
            options = options or pb.VerifyOptions()
            when = (
                request_time(
                    options.validation_time,
                    field="options.validation_time",
                    reason="VALIDATION_TIME_INVALID",
                )
                if options.HasField("validation_time")
                else None
            )
            report = self._verifier().verify(
                spool.stream, validation_time=when, deadline_seconds=deadlines.remaining()
            )
        finally:
            self._done_with(spool)
        registry = RegistryCheckResult(RegistryStatus.NOT_CHECKED, problem="not asked")
        if not options.skip_registry and self._checker is not None:
            registry = self._checker.check(bytes.fromhex(report.document_sha256))
        log.info(
            "document verified",
            extra={
                "indication": report.indication.value,
                "signatures": len(report.signatures),
                "registry": registry.status.value,
            },
        )
        language = options.language or "th"
        verdict = document_verdict(
            report, registry_revoked=registry.status is RegistryStatus.REVOKED
        )
        return pb.VerifyDocumentResponse(
            report=_report_pb(report, registry, verdict),
            etsi_xml=to_etsi_xml(report) if options.include_etsi_xml else b"",
            summary=summary_text(report, language, verdict),
        )
