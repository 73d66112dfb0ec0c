"""egov.registry.v1.RegistryService: proto -> domain call -> proto; no business logic here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from egov.registry.v1 import registry_pb2 as pb
from egov.registry.v1 import registry_pb2_grpc
from egov.type.v1 import errors_pb2, party_pb2
from egov_common.auth import current_caller
from egov_common.clock import request_time
from egov_common.errors import EgovError, FieldViolation, InvalidArgument
from egov_pki import merkle
from google.protobuf import timestamp_pb2

from .adapters.callers import actor_for
from .domain import rules
from .domain.model import (
    Actor,
    Document,
    DocumentQuery,
    DocumentStatus,
    Registration,
    RegistrationOutcome,
    RevocationReason,
    StatusChange,
)
from .storage.store import LoggedEntry, RegistryStore

__all__ = ["RegistryServicer"]

_NAMESPACES = {
    party_pb2.IDENTIFIER_NAMESPACE_TH_PID: "TH-PID",
    party_pb2.IDENTIFIER_NAMESPACE_TH_JUR: "TH-JUR",
    party_pb2.IDENTIFIER_NAMESPACE_PASSPORT: "PASSPORT",
}
_NAMESPACE_ENUMS = {name: number for number, name in _NAMESPACES.items()}
_STATUS_TO_PB = {
    DocumentStatus.REGISTERED: pb.DOCUMENT_STATUS_REGISTERED,
    DocumentStatus.REVOKED: pb.DOCUMENT_STATUS_REVOKED,
    DocumentStatus.SUPERSEDED: pb.DOCUMENT_STATUS_SUPERSEDED,
}
_STATUS_FROM_PB: dict[int, DocumentStatus] = {
    number: status for status, number in _STATUS_TO_PB.items()
}
_REASON_FROM_PB: dict[int, RevocationReason] = {
    pb.RevocationReason.Value("REVOCATION_REASON_" + reason.value): reason
    for reason in RevocationReason
}
_EVENT_TO_PB = {
    merkle.LogEventType.REGISTERED: pb.LOG_EVENT_TYPE_REGISTERED,
    merkle.LogEventType.REVOKED: pb.LOG_EVENT_TYPE_REVOKED,
    merkle.LogEventType.SUPERSEDED: pb.LOG_EVENT_TYPE_SUPERSEDED,
}


def _ms_if_set(message: Any, field: str, reason: str) -> int | None:
    """A request's Timestamp ``field`` in ms since 1970, None when unset; INVALID_ARGUMENT
    ``reason`` for one outside what a Timestamp may hold."""
    if not message.HasField(field):
        return None
    return rules.epoch_ms(request_time(getattr(message, field), field=field, reason=reason))


def _ts(ms: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _status_filter(number: int) -> DocumentStatus | None:
    """The ListDocuments status filter: None for none; INVALID_ARGUMENT for an unknown one
    (ignoring it would list every status)."""
    if number == pb.DOCUMENT_STATUS_UNSPECIFIED:
        return None
    status = _STATUS_FROM_PB.get(number)
    if status is None:
        raise InvalidArgument(
            "STATUS_INVALID",
            f"no document status numbered {number}",
            field_violations=(FieldViolation("status", "unknown"),),
        )
    return status


def _party_string(party: party_pb2.PartyIdentifier) -> tuple[str, str]:
    return _NAMESPACES.get(party.namespace, ""), party.value


def _party(identifier: str) -> party_pb2.PartyIdentifier | None:
    if not identifier:
        return None
    namespace, _, value = identifier.partition(":")
    return party_pb2.PartyIdentifier(namespace=_NAMESPACE_ENUMS[namespace], value=value)


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):  # type: ignore[misc,unused-ignore]
    def __init__(
        self,
        store: RegistryStore,
        *,
        verification_url_base: str,
        trusted_services: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._store = store
        self._url_base = verification_url_base
        self._trusted_services = trusted_services

    def _actor(self) -> Actor:
        return actor_for(current_caller(), self._trusted_services)

    # -- conversions ---------------------------------------------------------------------------

    def _issuer(self, party: party_pb2.PartyIdentifier, field: str = "issuer") -> str:
        namespace, value = _party_string(party)
        return rules.normalise_issuer(namespace, value, field)

    def _document(self, document: Document) -> pb.Document:
        message = pb.Document(
            document_id=document.document_id,
            sha256=document.sha256,
            issuer=_party(document.issuer),
            document_type=document.document_type,
            subject=_party(document.subject),
            signer_certificate_sha256=list(document.signer_certificate_sha256),
            valid_from=_ts(document.valid_from_ms),
            metadata=dict(document.metadata),
            status=_STATUS_TO_PB[document.status],
            registered_at=_ts(document.registered_at_ms),
            history=[self._change(c) for c in document.history],
            supersedes=document.supersedes,
            superseded_by=document.superseded_by,
            verification_url=self._url_base + document.document_id,
        )
        if document.valid_until_ms is not None:
            message.valid_until.CopyFrom(_ts(document.valid_until_ms))
        return message

    @staticmethod
    def _change(change: StatusChange) -> pb.StatusChange:
        return pb.StatusChange(
            status=_STATUS_TO_PB[change.status],
            changed_at=_ts(change.changed_at_ms),
            reason=(
                pb.RevocationReason.Value("REVOCATION_REASON_" + change.reason.value)
                if change.reason
                else pb.REVOCATION_REASON_UNSPECIFIED
            ),
            reason_text=change.reason_text,
            actor=change.actor,
            leaf_index=change.leaf_index,
            superseded_by=change.superseded_by,
        )

    def _registration(self, request: pb.RegisterDocumentRequest) -> Registration:
        return Registration(
            idempotency_key=request.idempotency_key,
            document_id=request.document_id,
            sha256=request.sha256,
            issuer=self._issuer(request.issuer),
            document_type=request.document_type,
            subject=rules.registration_subject(
                *_party_string(request.subject), given=request.HasField("subject")
            ),
            signer_certificate_sha256=tuple(request.signer_certificate_sha256),
            valid_from_ms=_ms_if_set(request, "valid_from", "VALIDITY_INVALID"),
            valid_until_ms=_ms_if_set(request, "valid_until", "VALIDITY_INVALID"),
            metadata=dict(request.metadata),
        )

    def _outcome(self, outcome: RegistrationOutcome) -> pb.RegisterDocumentResponse:
        return pb.RegisterDocumentResponse(
            document=self._document(outcome.document), replayed=outcome.replayed
        )

    @staticmethod
    def _tree_head(head: merkle.TreeHead, log_id: bytes) -> pb.SignedTreeHead:
        return pb.SignedTreeHead(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            timestamp=_ts(head.timestamp_ms),
            signature=head.signature,
            log_id=log_id,
        )

    @staticmethod
    def _entry(entry: LoggedEntry, *, whole: bool = True) -> pb.LogEntry:
        """The entry; not ``whole``, only its index and leaf hash (see GetLogEntries)."""
        if not whole:
            return pb.LogEntry(leaf_index=entry.leaf_index, leaf_hash=entry.leaf_hash)
        return pb.LogEntry(
            leaf_index=entry.leaf_index,
            event_type=_EVENT_TO_PB[entry.event_type],
            leaf_data=entry.leaf_data,
            document_id=entry.document_id,
            leaf_hash=entry.leaf_hash,
        )

    def _sees_leaves(self) -> bool:
        """Whether the caller may read leaves' data: an auditor. Their document ids would list
        every document, and GetDocument shows anyone holding an id its subject and metadata."""
        return rules.AUDIT_SCOPE in self._actor().scopes

    # -- RPCs ----------------------------------------------------------------------------------

    def ReserveDocumentId(
        self, request: pb.ReserveDocumentIdRequest, context: grpc.ServicerContext
    ) -> pb.ReserveDocumentIdResponse:
        issuer = self._issuer(request.issuer)
        rules.check_document_type(request.document_type)
        reservation = self._store.reserve(
            self._actor(), issuer, request.document_type, request.idempotency_key
        )
        return pb.ReserveDocumentIdResponse(
            document_id=reservation.document_id,
            expires_at=_ts(reservation.expires_at_ms),
            verification_url=self._url_base + reservation.document_id,
        )

    def RegisterDocument(
        self, request: pb.RegisterDocumentRequest, context: grpc.ServicerContext
    ) -> pb.RegisterDocumentResponse:
        (result,) = self._store.register(self._actor(), [self._registration(request)])
        if isinstance(result, EgovError):
            raise result
        return self._outcome(result)

    def RegisterDocuments(
        self, request: pb.RegisterDocumentsRequest, context: grpc.ServicerContext
    ) -> pb.RegisterDocumentsResponse:
        if len(request.requests) > rules.LIMITS.batch_size:
            raise InvalidArgument(
                "BATCH_TOO_LARGE",
                f"at most {rules.LIMITS.batch_size} registrations per call",
                field_violations=(FieldViolation("requests", "too many"),),
            )
        results: list[pb.RegisterDocumentsResult] = []
        valid: list[tuple[int, Registration]] = []
        for position, item in enumerate(request.requests):
            try:
                valid.append((position, self._registration(item)))
            except EgovError as error:
                results.append(pb.RegisterDocumentsResult(error=_item_error(error)))
            else:
                results.append(pb.RegisterDocumentsResult())
        outcomes = self._store.register(self._actor(), [r for _, r in valid])
        for (position, _), outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, EgovError):
                results[position] = pb.RegisterDocumentsResult(error=_item_error(outcome))
            else:
                results[position] = pb.RegisterDocumentsResult(response=self._outcome(outcome))
        return pb.RegisterDocumentsResponse(results=results)

    def GetDocument(
        self, request: pb.GetDocumentRequest, context: grpc.ServicerContext
    ) -> pb.GetDocumentResponse:
        return pb.GetDocumentResponse(document=self._document(self._store.get(request.document_id)))

    def LookupByHash(
        self, request: pb.LookupByHashRequest, context: grpc.ServicerContext
    ) -> pb.LookupByHashResponse:
        documents = self._store.lookup_by_hash(request.sha256)
        return pb.LookupByHashResponse(documents=[self._document(d) for d in documents])

    def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: grpc.ServicerContext
    ) -> pb.ListDocumentsResponse:
        subject = ""
        if request.HasField("subject"):
            subject = rules.normalise_subject(*_party_string(request.subject))
        issuer = self._issuer(request.issuer) if request.HasField("issuer") else ""
        if request.document_type:  # PostgreSQL would fail on a NUL; no document has it
            rules.check_document_type(request.document_type)
        query = DocumentQuery(
            issuer=rules.listing_issuer(self._actor(), issuer),
            document_type=request.document_type,
            subject=subject,
            status=_status_filter(request.status),
            registered_after_ms=_ms_if_set(request, "registered_after", "TIME_FILTER_INVALID"),
            registered_before_ms=_ms_if_set(request, "registered_before", "TIME_FILTER_INVALID"),
        )
        page = self._store.list_documents(query, request.page_size, request.page_token)
        return pb.ListDocumentsResponse(
            documents=[self._document(d) for d in page.documents],
            next_page_token=page.next_page_token,
        )

    def RevokeDocument(
        self, request: pb.RevokeDocumentRequest, context: grpc.ServicerContext
    ) -> pb.RevokeDocumentResponse:
        reason = None
        if request.reason != pb.REVOCATION_REASON_UNSPECIFIED:
            reason = _REASON_FROM_PB.get(request.reason)
            if reason is None:
                raise InvalidArgument(
                    "REVOCATION_REASON_INVALID",
                    f"no revocation reason numbered {request.reason}",
                    field_violations=(FieldViolation("reason", "unknown"),),
                )
        document = self._store.revoke(
            self._actor(), request.document_id, reason, request.reason_text
        )
        return pb.RevokeDocumentResponse(document=self._document(document))

    def SupersedeDocument(
        self, request: pb.SupersedeDocumentRequest, context: grpc.ServicerContext
    ) -> pb.SupersedeDocumentResponse:
        old, new = self._store.supersede(
            self._actor(), request.document_id, request.new_document_id, request.reason_text
        )
        return pb.SupersedeDocumentResponse(
            old_document=self._document(old), new_document=self._document(new)
        )

    def GetLogInfo(
        self, request: pb.GetLogInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetLogInfoResponse:
        return pb.GetLogInfoResponse(
            public_key_der=self._store.public_key_der,
            log_id=self._store.log_id,
            hash_algorithm="sha256",
            signature_algorithm="ecdsa-p256-sha256",
        )

    def GetSignedTreeHead(
        self, request: pb.GetSignedTreeHeadRequest, context: grpc.ServicerContext
    ) -> pb.GetSignedTreeHeadResponse:
        head = self._store.signed_tree_head()
        return pb.GetSignedTreeHeadResponse(tree_head=self._tree_head(head, self._store.log_id))

    def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> pb.GetInclusionProofResponse:
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument(
                "TARGET_MISSING",
                "give a document_id or a leaf_index",
                field_violations=(FieldViolation("target", "required"),),
            )
        entry, path, head = self._store.inclusion_proof(
            document_id=request.document_id if target == "document_id" else "",
            leaf_index=request.leaf_index if target == "leaf_index" else None,
            tree_size=request.tree_size,
        )
        return pb.GetInclusionProofResponse(
            # by document id the caller holds the id already; by index it may be fishing
            entry=self._entry(entry, whole=target == "document_id" or self._sees_leaves()),
            audit_path=path,
            tree_head=self._tree_head(head, self._store.log_id),
        )

    def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> pb.GetConsistencyProofResponse:
        proof, head = self._store.consistency_proof(
            request.first_tree_size, request.second_tree_size
        )
        return pb.GetConsistencyProofResponse(
            proof=proof, tree_head=self._tree_head(head, self._store.log_id)
        )

    def GetLogEntries(
        self, request: pb.GetLogEntriesRequest, context: grpc.ServicerContext
    ) -> pb.GetLogEntriesResponse:
        entries = self._store.log_entries(request.start, request.end)
        whole = self._sees_leaves()
        return pb.GetLogEntriesResponse(entries=[self._entry(e, whole=whole) for e in entries])


def _item_error(error: EgovError) -> errors_pb2.ItemError:
    return errors_pb2.ItemError(code=error.code.value, reason=error.reason, message=error.message)
