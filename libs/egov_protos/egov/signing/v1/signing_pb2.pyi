import datetime

from egov.registry.v1 import registry_pb2 as _registry_pb2
from egov.type.v1 import crypto_pb2 as _crypto_pb2
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

class DocMdpPermission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOC_MDP_PERMISSION_UNSPECIFIED: _ClassVar[DocMdpPermission]
    DOC_MDP_PERMISSION_NO_CHANGES: _ClassVar[DocMdpPermission]
    DOC_MDP_PERMISSION_FORM_FILLING: _ClassVar[DocMdpPermission]
    DOC_MDP_PERMISSION_ANNOTATIONS: _ClassVar[DocMdpPermission]

class RegistrationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGISTRATION_STATUS_UNSPECIFIED: _ClassVar[RegistrationStatus]
    REGISTRATION_STATUS_NOT_REQUESTED: _ClassVar[RegistrationStatus]
    REGISTRATION_STATUS_REGISTERED: _ClassVar[RegistrationStatus]
    REGISTRATION_STATUS_UNREGISTERED: _ClassVar[RegistrationStatus]

class Indication(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDICATION_UNSPECIFIED: _ClassVar[Indication]
    INDICATION_TOTAL_PASSED: _ClassVar[Indication]
    INDICATION_TOTAL_FAILED: _ClassVar[Indication]
    INDICATION_INDETERMINATE: _ClassVar[Indication]

class SubIndication(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUB_INDICATION_UNSPECIFIED: _ClassVar[SubIndication]
    SUB_INDICATION_FORMAT_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_HASH_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_SIG_CRYPTO_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_REVOKED: _ClassVar[SubIndication]
    SUB_INDICATION_SIG_CONSTRAINTS_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_CHAIN_CONSTRAINTS_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_CERTIFICATE_CHAIN_GENERAL_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_CRYPTO_CONSTRAINTS_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_EXPIRED: _ClassVar[SubIndication]
    SUB_INDICATION_NOT_YET_VALID: _ClassVar[SubIndication]
    SUB_INDICATION_POLICY_PROCESSING_ERROR: _ClassVar[SubIndication]
    SUB_INDICATION_NO_SIGNING_CERTIFICATE_FOUND: _ClassVar[SubIndication]
    SUB_INDICATION_NO_CERTIFICATE_CHAIN_FOUND: _ClassVar[SubIndication]
    SUB_INDICATION_REVOKED_NO_POE: _ClassVar[SubIndication]
    SUB_INDICATION_REVOKED_CA_NO_POE: _ClassVar[SubIndication]
    SUB_INDICATION_OUT_OF_BOUNDS_NO_POE: _ClassVar[SubIndication]
    SUB_INDICATION_OUT_OF_BOUNDS_NOT_REVOKED: _ClassVar[SubIndication]
    SUB_INDICATION_CRYPTO_CONSTRAINTS_FAILURE_NO_POE: _ClassVar[SubIndication]
    SUB_INDICATION_NO_POE: _ClassVar[SubIndication]
    SUB_INDICATION_TRY_LATER: _ClassVar[SubIndication]
    SUB_INDICATION_SIGNED_DATA_NOT_FOUND: _ClassVar[SubIndication]
    SUB_INDICATION_TIMESTAMP_ORDER_FAILURE: _ClassVar[SubIndication]
    SUB_INDICATION_ILLEGAL_MODIFICATIONS: _ClassVar[SubIndication]

class Coverage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COVERAGE_UNSPECIFIED: _ClassVar[Coverage]
    COVERAGE_ENTIRE_FILE: _ClassVar[Coverage]
    COVERAGE_ENTIRE_REVISION: _ClassVar[Coverage]
    COVERAGE_PARTIAL: _ClassVar[Coverage]

class ModificationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODIFICATION_LEVEL_UNSPECIFIED: _ClassVar[ModificationLevel]
    MODIFICATION_LEVEL_NONE: _ClassVar[ModificationLevel]
    MODIFICATION_LEVEL_LTA_UPDATES: _ClassVar[ModificationLevel]
    MODIFICATION_LEVEL_FORM_FILLING: _ClassVar[ModificationLevel]
    MODIFICATION_LEVEL_ANNOTATIONS: _ClassVar[ModificationLevel]
    MODIFICATION_LEVEL_OTHER: _ClassVar[ModificationLevel]

class RevocationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVOCATION_STATUS_UNSPECIFIED: _ClassVar[RevocationStatus]
    REVOCATION_STATUS_GOOD: _ClassVar[RevocationStatus]
    REVOCATION_STATUS_REVOKED: _ClassVar[RevocationStatus]
    REVOCATION_STATUS_UNKNOWN: _ClassVar[RevocationStatus]
    REVOCATION_STATUS_NOT_CHECKED: _ClassVar[RevocationStatus]

class SignatureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_KIND_UNSPECIFIED: _ClassVar[SignatureKind]
    SIGNATURE_KIND_SIGNATURE: _ClassVar[SignatureKind]
    SIGNATURE_KIND_DOCUMENT_TIMESTAMP: _ClassVar[SignatureKind]

class RegistryCheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGISTRY_CHECK_STATUS_UNSPECIFIED: _ClassVar[RegistryCheckStatus]
    REGISTRY_CHECK_STATUS_REGISTERED: _ClassVar[RegistryCheckStatus]
    REGISTRY_CHECK_STATUS_REVOKED: _ClassVar[RegistryCheckStatus]
    REGISTRY_CHECK_STATUS_SUPERSEDED: _ClassVar[RegistryCheckStatus]
    REGISTRY_CHECK_STATUS_UNKNOWN: _ClassVar[RegistryCheckStatus]
    REGISTRY_CHECK_STATUS_NOT_CHECKED: _ClassVar[RegistryCheckStatus]
DOC_MDP_PERMISSION_UNSPECIFIED: DocMdpPermission
DOC_MDP_PERMISSION_NO_CHANGES: DocMdpPermission
DOC_MDP_PERMISSION_FORM_FILLING: DocMdpPermission
DOC_MDP_PERMISSION_ANNOTATIONS: DocMdpPermission
REGISTRATION_STATUS_UNSPECIFIED: RegistrationStatus
REGISTRATION_STATUS_NOT_REQUESTED: RegistrationStatus
REGISTRATION_STATUS_REGISTERED: RegistrationStatus
REGISTRATION_STATUS_UNREGISTERED: RegistrationStatus
INDICATION_UNSPECIFIED: Indication
INDICATION_TOTAL_PASSED: Indication
INDICATION_TOTAL_FAILED: Indication
INDICATION_INDETERMINATE: Indication
SUB_INDICATION_UNSPECIFIED: SubIndication
SUB_INDICATION_FORMAT_FAILURE: SubIndication
SUB_INDICATION_HASH_FAILURE: SubIndication
SUB_INDICATION_SIG_CRYPTO_FAILURE: SubIndication
SUB_INDICATION_REVOKED: SubIndication
SUB_INDICATION_SIG_CONSTRAINTS_FAILURE: SubIndication
SUB_INDICATION_CHAIN_CONSTRAINTS_FAILURE: SubIndication
SUB_INDICATION_CERTIFICATE_CHAIN_GENERAL_FAILURE: SubIndication
SUB_INDICATION_CRYPTO_CONSTRAINTS_FAILURE: SubIndication
SUB_INDICATION_EXPIRED: SubIndication
SUB_INDICATION_NOT_YET_VALID: SubIndication
SUB_INDICATION_POLICY_PROCESSING_ERROR: SubIndication
SUB_INDICATION_NO_SIGNING_CERTIFICATE_FOUND: SubIndication
SUB_INDICATION_NO_CERTIFICATE_CHAIN_FOUND: SubIndication
SUB_INDICATION_REVOKED_NO_POE: SubIndication
SUB_INDICATION_REVOKED_CA_NO_POE: SubIndication
SUB_INDICATION_OUT_OF_BOUNDS_NO_POE: SubIndication
SUB_INDICATION_OUT_OF_BOUNDS_NOT_REVOKED: SubIndication
SUB_INDICATION_CRYPTO_CONSTRAINTS_FAILURE_NO_POE: SubIndication
SUB_INDICATION_NO_POE: SubIndication
SUB_INDICATION_TRY_LATER: SubIndication
SUB_INDICATION_SIGNED_DATA_NOT_FOUND: SubIndication
SUB_INDICATION_TIMESTAMP_ORDER_FAILURE: SubIndication
SUB_INDICATION_ILLEGAL_MODIFICATIONS: SubIndication
COVERAGE_UNSPECIFIED: Coverage
COVERAGE_ENTIRE_FILE: Coverage
COVERAGE_ENTIRE_REVISION: Coverage
COVERAGE_PARTIAL: Coverage
MODIFICATION_LEVEL_UNSPECIFIED: ModificationLevel
MODIFICATION_LEVEL_NONE: ModificationLevel
MODIFICATION_LEVEL_LTA_UPDATES: ModificationLevel
MODIFICATION_LEVEL_FORM_FILLING: ModificationLevel
MODIFICATION_LEVEL_ANNOTATIONS: ModificationLevel
MODIFICATION_LEVEL_OTHER: ModificationLevel
REVOCATION_STATUS_UNSPECIFIED: RevocationStatus
REVOCATION_STATUS_GOOD: RevocationStatus
REVOCATION_STATUS_REVOKED: RevocationStatus
REVOCATION_STATUS_UNKNOWN: RevocationStatus
REVOCATION_STATUS_NOT_CHECKED: RevocationStatus
SIGNATURE_KIND_UNSPECIFIED: SignatureKind
SIGNATURE_KIND_SIGNATURE: SignatureKind
SIGNATURE_KIND_DOCUMENT_TIMESTAMP: SignatureKind
REGISTRY_CHECK_STATUS_UNSPECIFIED: RegistryCheckStatus
REGISTRY_CHECK_STATUS_REGISTERED: RegistryCheckStatus
REGISTRY_CHECK_STATUS_REVOKED: RegistryCheckStatus
REGISTRY_CHECK_STATUS_SUPERSEDED: RegistryCheckStatus
REGISTRY_CHECK_STATUS_UNKNOWN: RegistryCheckStatus
REGISTRY_CHECK_STATUS_NOT_CHECKED: RegistryCheckStatus

class Rectangle(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class VisibleStamp(_message.Message):
    __slots__ = ("page", "box", "language", "include_qr_code")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_QR_CODE_FIELD_NUMBER: _ClassVar[int]
    page: int
    box: Rectangle
    language: str
    include_qr_code: bool
    def __init__(self, page: _Optional[int] = ..., box: _Optional[_Union[Rectangle, _Mapping]] = ..., language: _Optional[str] = ..., include_qr_code: _Optional[bool] = ...) -> None: ...

class RegistrationRequest(_message.Message):
    __slots__ = ("issuer", "document_type", "subject", "valid_from", "valid_until", "metadata", "idempotency_key")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    issuer: _party_pb2.PartyIdentifier
    document_type: str
    subject: _party_pb2.PartyIdentifier
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    idempotency_key: str
    def __init__(self, issuer: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., document_type: _Optional[str] = ..., subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SignOptions(_message.Message):
    __slots__ = ("credential_id", "authorization_proof", "level", "field_name", "reason", "location", "contact_info", "certification", "stamp", "registration")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_INFO_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATION_FIELD_NUMBER: _ClassVar[int]
    STAMP_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    authorization_proof: str
    level: _crypto_pb2.PadesLevel
    field_name: str
    reason: str
    location: str
    contact_info: str
    certification: DocMdpPermission
    stamp: VisibleStamp
    registration: RegistrationRequest
    def __init__(self, credential_id: _Optional[str] = ..., authorization_proof: _Optional[str] = ..., level: _Optional[_Union[_crypto_pb2.PadesLevel, str]] = ..., field_name: _Optional[str] = ..., reason: _Optional[str] = ..., location: _Optional[str] = ..., contact_info: _Optional[str] = ..., certification: _Optional[_Union[DocMdpPermission, str]] = ..., stamp: _Optional[_Union[VisibleStamp, _Mapping]] = ..., registration: _Optional[_Union[RegistrationRequest, _Mapping]] = ...) -> None: ...

class SignDocumentRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: SignOptions
    chunk: bytes
    def __init__(self, options: _Optional[_Union[SignOptions, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class SignResult(_message.Message):
    __slots__ = ("sha256", "size_bytes", "level", "field_name", "registration_status", "document_id", "verification_url", "registration_error", "signing_time")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_URL_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    SIGNING_TIME_FIELD_NUMBER: _ClassVar[int]
    sha256: bytes
    size_bytes: int
    level: _crypto_pb2.PadesLevel
    field_name: str
    registration_status: RegistrationStatus
    document_id: str
    verification_url: str
    registration_error: _errors_pb2.ItemError
    signing_time: _timestamp_pb2.Timestamp
    def __init__(self, sha256: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., level: _Optional[_Union[_crypto_pb2.PadesLevel, str]] = ..., field_name: _Optional[str] = ..., registration_status: _Optional[_Union[RegistrationStatus, str]] = ..., document_id: _Optional[str] = ..., verification_url: _Optional[str] = ..., registration_error: _Optional[_Union[_errors_pb2.ItemError, _Mapping]] = ..., signing_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignDocumentResponse(_message.Message):
    __slots__ = ("result", "chunk")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    result: SignResult
    chunk: bytes
    def __init__(self, result: _Optional[_Union[SignResult, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class BatchDocument(_message.Message):
    __slots__ = ("client_reference", "pdf", "registration")
    CLIENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PDF_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    client_reference: str
    pdf: bytes
    registration: RegistrationRequest
    def __init__(self, client_reference: _Optional[str] = ..., pdf: _Optional[bytes] = ..., registration: _Optional[_Union[RegistrationRequest, _Mapping]] = ...) -> None: ...

class SignDocumentsRequest(_message.Message):
    __slots__ = ("options", "documents")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    options: SignOptions
    documents: _containers.RepeatedCompositeFieldContainer[BatchDocument]
    def __init__(self, options: _Optional[_Union[SignOptions, _Mapping]] = ..., documents: _Optional[_Iterable[_Union[BatchDocument, _Mapping]]] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("client_reference", "result", "signed_pdf", "error")
    CLIENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_PDF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    client_reference: str
    result: SignResult
    signed_pdf: bytes
    error: _errors_pb2.ItemError
    def __init__(self, client_reference: _Optional[str] = ..., result: _Optional[_Union[SignResult, _Mapping]] = ..., signed_pdf: _Optional[bytes] = ..., error: _Optional[_Union[_errors_pb2.ItemError, _Mapping]] = ...) -> None: ...

class SignDocumentsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...

class VerifyOptions(_message.Message):
    __slots__ = ("language", "include_etsi_xml", "validation_time", "skip_registry")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ETSI_XML_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_TIME_FIELD_NUMBER: _ClassVar[int]
    SKIP_REGISTRY_FIELD_NUMBER: _ClassVar[int]
    language: str
    include_etsi_xml: bool
    validation_time: _timestamp_pb2.Timestamp
    skip_registry: bool
    def __init__(self, language: _Optional[str] = ..., include_etsi_xml: _Optional[bool] = ..., validation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., skip_registry: _Optional[bool] = ...) -> None: ...

class VerifyDocumentRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: VerifyOptions
    chunk: bytes
    def __init__(self, options: _Optional[_Union[VerifyOptions, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Signer(_message.Message):
    __slots__ = ("name", "organization", "masked_identifier", "issuer", "certificate_sha256", "certificate_serial")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    MASKED_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    organization: str
    masked_identifier: str
    issuer: str
    certificate_sha256: bytes
    certificate_serial: str
    def __init__(self, name: _Optional[str] = ..., organization: _Optional[str] = ..., masked_identifier: _Optional[str] = ..., issuer: _Optional[str] = ..., certificate_sha256: _Optional[bytes] = ..., certificate_serial: _Optional[str] = ...) -> None: ...

class SignatureReport(_message.Message):
    __slots__ = ("field_name", "kind", "indication", "sub_indication", "reason", "signer", "claimed_signing_time", "timestamp_time", "intact", "valid", "trusted", "coverage", "modification_level", "docmdp_ok", "certification", "pades_level", "subfilter", "digest_algorithm", "signature_algorithm", "revocation_status", "revoked_at", "revocation_reason", "chain", "signed_revision")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDICATION_FIELD_NUMBER: _ClassVar[int]
    SUB_INDICATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_SIGNING_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_TIME_FIELD_NUMBER: _ClassVar[int]
    INTACT_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    MODIFICATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DOCMDP_OK_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATION_FIELD_NUMBER: _ClassVar[int]
    PADES_LEVEL_FIELD_NUMBER: _ClassVar[int]
    SUBFILTER_FIELD_NUMBER: _ClassVar[int]
    DIGEST_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    SIGNED_REVISION_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    kind: SignatureKind
    indication: Indication
    sub_indication: SubIndication
    reason: str
    signer: Signer
    claimed_signing_time: _timestamp_pb2.Timestamp
    timestamp_time: _timestamp_pb2.Timestamp
    intact: bool
    valid: bool
    trusted: bool
    coverage: Coverage
    modification_level: ModificationLevel
    docmdp_ok: bool
    certification: DocMdpPermission
    pades_level: _crypto_pb2.PadesLevel
    subfilter: str
    digest_algorithm: str
    signature_algorithm: str
    revocation_status: RevocationStatus
    revoked_at: _timestamp_pb2.Timestamp
    revocation_reason: str
    chain: _containers.RepeatedScalarFieldContainer[str]
    signed_revision: int
    def __init__(self, field_name: _Optional[str] = ..., kind: _Optional[_Union[SignatureKind, str]] = ..., indication: _Optional[_Union[Indication, str]] = ..., sub_indication: _Optional[_Union[SubIndication, str]] = ..., reason: _Optional[str] = ..., signer: _Optional[_Union[Signer, _Mapping]] = ..., claimed_signing_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timestamp_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intact: _Optional[bool] = ..., valid: _Optional[bool] = ..., trusted: _Optional[bool] = ..., coverage: _Optional[_Union[Coverage, str]] = ..., modification_level: _Optional[_Union[ModificationLevel, str]] = ..., docmdp_ok: _Optional[bool] = ..., certification: _Optional[_Union[DocMdpPermission, str]] = ..., pades_level: _Optional[_Union[_crypto_pb2.PadesLevel, str]] = ..., subfilter: _Optional[str] = ..., digest_algorithm: _Optional[str] = ..., signature_algorithm: _Optional[str] = ..., revocation_status: _Optional[_Union[RevocationStatus, str]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revocation_reason: _Optional[str] = ..., chain: _Optional[_Iterable[str]] = ..., signed_revision: _Optional[int] = ...) -> None: ...

class RegistryCheck(_message.Message):
    __slots__ = ("status", "document", "inclusion_verified", "problem")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    status: RegistryCheckStatus
    document: _registry_pb2.Document
    inclusion_verified: bool
    problem: str
    def __init__(self, status: _Optional[_Union[RegistryCheckStatus, str]] = ..., document: _Optional[_Union[_registry_pb2.Document, _Mapping]] = ..., inclusion_verified: _Optional[bool] = ..., problem: _Optional[str] = ...) -> None: ...

class ValidationReport(_message.Message):
    __slots__ = ("indication", "sub_indication", "reason", "sha256", "size_bytes", "revision_count", "signatures", "unsigned_content_after_last_signature", "registry", "validation_time", "problems")
    INDICATION_FIELD_NUMBER: _ClassVar[int]
    SUB_INDICATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    REVISION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    UNSIGNED_CONTENT_AFTER_LAST_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_TIME_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    indication: Indication
    sub_indication: SubIndication
    reason: str
    sha256: bytes
    size_bytes: int
    revision_count: int
    signatures: _containers.RepeatedCompositeFieldContainer[SignatureReport]
    unsigned_content_after_last_signature: bool
    registry: RegistryCheck
    validation_time: _timestamp_pb2.Timestamp
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, indication: _Optional[_Union[Indication, str]] = ..., sub_indication: _Optional[_Union[SubIndication, str]] = ..., reason: _Optional[str] = ..., sha256: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., revision_count: _Optional[int] = ..., signatures: _Optional[_Iterable[_Union[SignatureReport, _Mapping]]] = ..., unsigned_content_after_last_signature: _Optional[bool] = ..., registry: _Optional[_Union[RegistryCheck, _Mapping]] = ..., validation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class VerifyDocumentResponse(_message.Message):
    __slots__ = ("report", "etsi_xml", "summary")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ETSI_XML_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    report: ValidationReport
    etsi_xml: bytes
    summary: str
    def __init__(self, report: _Optional[_Union[ValidationReport, _Mapping]] = ..., etsi_xml: _Optional[bytes] = ..., summary: _Optional[str] = ...) -> None: ...
