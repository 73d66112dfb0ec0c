import datetime

from egov.type.v1 import errors_pb2 as _errors_pb2
from egov.type.v1 import party_pb2 as _party_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_STATUS_UNSPECIFIED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_REGISTERED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_REVOKED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_SUPERSEDED: _ClassVar[DocumentStatus]

class RevocationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVOCATION_REASON_UNSPECIFIED: _ClassVar[RevocationReason]
    REVOCATION_REASON_ISSUED_IN_ERROR: _ClassVar[RevocationReason]
    REVOCATION_REASON_NO_LONGER_VALID: _ClassVar[RevocationReason]
    REVOCATION_REASON_FRAUD: _ClassVar[RevocationReason]
    REVOCATION_REASON_SUBJECT_REQUEST: _ClassVar[RevocationReason]
    REVOCATION_REASON_LEGAL_ORDER: _ClassVar[RevocationReason]
    REVOCATION_REASON_KEY_COMPROMISE: _ClassVar[RevocationReason]
    REVOCATION_REASON_OTHER: _ClassVar[RevocationReason]

class LogEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_EVENT_TYPE_UNSPECIFIED: _ClassVar[LogEventType]
    LOG_EVENT_TYPE_REGISTERED: _ClassVar[LogEventType]
    LOG_EVENT_TYPE_REVOKED: _ClassVar[LogEventType]
    LOG_EVENT_TYPE_SUPERSEDED: _ClassVar[LogEventType]
DOCUMENT_STATUS_UNSPECIFIED: DocumentStatus
DOCUMENT_STATUS_REGISTERED: DocumentStatus
DOCUMENT_STATUS_REVOKED: DocumentStatus
DOCUMENT_STATUS_SUPERSEDED: DocumentStatus
REVOCATION_REASON_UNSPECIFIED: RevocationReason
REVOCATION_REASON_ISSUED_IN_ERROR: RevocationReason
REVOCATION_REASON_NO_LONGER_VALID: RevocationReason
REVOCATION_REASON_FRAUD: RevocationReason
REVOCATION_REASON_SUBJECT_REQUEST: RevocationReason
REVOCATION_REASON_LEGAL_ORDER: RevocationReason
REVOCATION_REASON_KEY_COMPROMISE: RevocationReason
REVOCATION_REASON_OTHER: RevocationReason
LOG_EVENT_TYPE_UNSPECIFIED: LogEventType
LOG_EVENT_TYPE_REGISTERED: LogEventType
LOG_EVENT_TYPE_REVOKED: LogEventType
LOG_EVENT_TYPE_SUPERSEDED: LogEventType

class StatusChange(_message.Message):
    __slots__ = ("status", "changed_at", "reason", "reason_text", "actor", "leaf_index", "superseded_by")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    status: DocumentStatus
    changed_at: _timestamp_pb2.Timestamp
    reason: RevocationReason
    reason_text: str
    actor: str
    leaf_index: int
    superseded_by: str
    def __init__(self, status: _Optional[_Union[DocumentStatus, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[_Union[RevocationReason, str]] = ..., reason_text: _Optional[str] = ..., actor: _Optional[str] = ..., leaf_index: _Optional[int] = ..., superseded_by: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "sha256", "issuer", "document_type", "subject", "signer_certificate_sha256", "valid_from", "valid_until", "metadata", "status", "registered_at", "history", "supersedes", "superseded_by", "verification_url")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_URL_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    sha256: bytes
    issuer: _party_pb2.PartyIdentifier
    document_type: str
    subject: _party_pb2.PartyIdentifier
    signer_certificate_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    status: DocumentStatus
    registered_at: _timestamp_pb2.Timestamp
    history: _containers.RepeatedCompositeFieldContainer[StatusChange]
    supersedes: str
    superseded_by: str
    verification_url: str
    def __init__(self, document_id: _Optional[str] = ..., sha256: _Optional[bytes] = ..., issuer: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., document_type: _Optional[str] = ..., subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., signer_certificate_sha256: _Optional[_Iterable[bytes]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[DocumentStatus, str]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., history: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ..., supersedes: _Optional[str] = ..., superseded_by: _Optional[str] = ..., verification_url: _Optional[str] = ...) -> None: ...

class ReserveDocumentIdRequest(_message.Message):
    __slots__ = ("issuer", "document_type", "idempotency_key")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    issuer: _party_pb2.PartyIdentifier
    document_type: str
    idempotency_key: str
    def __init__(self, issuer: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., document_type: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ReserveDocumentIdResponse(_message.Message):
    __slots__ = ("document_id", "expires_at", "verification_url")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_URL_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    expires_at: _timestamp_pb2.Timestamp
    verification_url: str
    def __init__(self, document_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verification_url: _Optional[str] = ...) -> None: ...

class RegisterDocumentRequest(_message.Message):
    __slots__ = ("idempotency_key", "document_id", "sha256", "issuer", "document_type", "subject", "signer_certificate_sha256", "valid_from", "valid_until", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    document_id: str
    sha256: bytes
    issuer: _party_pb2.PartyIdentifier
    document_type: str
    subject: _party_pb2.PartyIdentifier
    signer_certificate_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, idempotency_key: _Optional[str] = ..., document_id: _Optional[str] = ..., sha256: _Optional[bytes] = ..., issuer: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., document_type: _Optional[str] = ..., subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., signer_certificate_sha256: _Optional[_Iterable[bytes]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RegisterDocumentResponse(_message.Message):
    __slots__ = ("document", "replayed")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    document: Document
    replayed: bool
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class RegisterDocumentsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RegisterDocumentRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[RegisterDocumentRequest, _Mapping]]] = ...) -> None: ...

class RegisterDocumentsResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: RegisterDocumentResponse
    error: _errors_pb2.ItemError
    def __init__(self, response: _Optional[_Union[RegisterDocumentResponse, _Mapping]] = ..., error: _Optional[_Union[_errors_pb2.ItemError, _Mapping]] = ...) -> None: ...

class RegisterDocumentsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RegisterDocumentsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RegisterDocumentsResult, _Mapping]]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("document_id",)
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    def __init__(self, document_id: _Optional[str] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: Document
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...

class LookupByHashRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: bytes
    def __init__(self, sha256: _Optional[bytes] = ...) -> None: ...

class LookupByHashResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("issuer", "document_type", "subject", "status", "registered_after", "registered_before", "page_size", "page_token")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AFTER_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    issuer: _party_pb2.PartyIdentifier
    document_type: str
    subject: _party_pb2.PartyIdentifier
    status: DocumentStatus
    registered_after: _timestamp_pb2.Timestamp
    registered_before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, issuer: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., document_type: _Optional[str] = ..., subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., status: _Optional[_Union[DocumentStatus, str]] = ..., registered_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registered_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "next_page_token")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    next_page_token: str
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeDocumentRequest(_message.Message):
    __slots__ = ("document_id", "reason", "reason_text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    reason: RevocationReason
    reason_text: str
    def __init__(self, document_id: _Optional[str] = ..., reason: _Optional[_Union[RevocationReason, str]] = ..., reason_text: _Optional[str] = ...) -> None: ...

class RevokeDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: Document
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...

class SupersedeDocumentRequest(_message.Message):
    __slots__ = ("document_id", "new_document_id", "reason_text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    new_document_id: str
    reason_text: str
    def __init__(self, document_id: _Optional[str] = ..., new_document_id: _Optional[str] = ..., reason_text: _Optional[str] = ...) -> None: ...

class SupersedeDocumentResponse(_message.Message):
    __slots__ = ("old_document", "new_document")
    OLD_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    NEW_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    old_document: Document
    new_document: Document
    def __init__(self, old_document: _Optional[_Union[Document, _Mapping]] = ..., new_document: _Optional[_Union[Document, _Mapping]] = ...) -> None: ...

class GetLogInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLogInfoResponse(_message.Message):
    __slots__ = ("public_key_der", "log_id", "hash_algorithm", "signature_algorithm")
    PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    HASH_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    public_key_der: bytes
    log_id: bytes
    hash_algorithm: str
    signature_algorithm: str
    def __init__(self, public_key_der: _Optional[bytes] = ..., log_id: _Optional[bytes] = ..., hash_algorithm: _Optional[str] = ..., signature_algorithm: _Optional[str] = ...) -> None: ...

class SignedTreeHead(_message.Message):
    __slots__ = ("tree_size", "root_hash", "timestamp", "signature", "log_id")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    root_hash: bytes
    timestamp: _timestamp_pb2.Timestamp
    signature: bytes
    log_id: bytes
    def __init__(self, tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., signature: _Optional[bytes] = ..., log_id: _Optional[bytes] = ...) -> None: ...

class GetSignedTreeHeadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSignedTreeHeadResponse(_message.Message):
    __slots__ = ("tree_head",)
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    tree_head: SignedTreeHead
    def __init__(self, tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("leaf_index", "event_type", "leaf_data", "document_id", "leaf_hash")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    LEAF_DATA_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    event_type: LogEventType
    leaf_data: bytes
    document_id: str
    leaf_hash: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., event_type: _Optional[_Union[LogEventType, str]] = ..., leaf_data: _Optional[bytes] = ..., document_id: _Optional[str] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("document_id", "leaf_index", "tree_size")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    leaf_index: int
    tree_size: int
    def __init__(self, document_id: _Optional[str] = ..., leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("entry", "audit_path", "tree_head")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    entry: LogEntry
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    tree_head: SignedTreeHead
    def __init__(self, entry: _Optional[_Union[LogEntry, _Mapping]] = ..., audit_path: _Optional[_Iterable[bytes]] = ..., tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_tree_size", "second_tree_size")
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_tree_size: int
    second_tree_size: int
    def __init__(self, first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("proof", "tree_head")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    tree_head: SignedTreeHead
    def __init__(self, proof: _Optional[_Iterable[bytes]] = ..., tree_head: _Optional[_Union[SignedTreeHead, _Mapping]] = ...) -> None: ...

class GetLogEntriesRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class GetLogEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ...) -> None: ...
