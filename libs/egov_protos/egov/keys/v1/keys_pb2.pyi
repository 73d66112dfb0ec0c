import datetime

from egov.type.v1 import crypto_pb2 as _crypto_pb2
from egov.type.v1 import party_pb2 as _party_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CredentialKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_KIND_UNSPECIFIED: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_NATURAL_PERSON: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_LEGAL_PERSON: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_ELECTRONIC_SEAL: _ClassVar[CredentialKind]

class CredentialStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_STATUS_UNSPECIFIED: _ClassVar[CredentialStatus]
    CREDENTIAL_STATUS_ACTIVE: _ClassVar[CredentialStatus]
    CREDENTIAL_STATUS_REVOKED: _ClassVar[CredentialStatus]
    CREDENTIAL_STATUS_RENEWED: _ClassVar[CredentialStatus]
    CREDENTIAL_STATUS_EXPIRED: _ClassVar[CredentialStatus]

class KeyBackend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_BACKEND_UNSPECIFIED: _ClassVar[KeyBackend]
    KEY_BACKEND_SOFTWARE: _ClassVar[KeyBackend]
    KEY_BACKEND_PKCS11: _ClassVar[KeyBackend]

class CertificateRevocationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CERTIFICATE_REVOCATION_REASON_UNSPECIFIED: _ClassVar[CertificateRevocationReason]
    CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE: _ClassVar[CertificateRevocationReason]
    CERTIFICATE_REVOCATION_REASON_AFFILIATION_CHANGED: _ClassVar[CertificateRevocationReason]
    CERTIFICATE_REVOCATION_REASON_SUPERSEDED: _ClassVar[CertificateRevocationReason]
    CERTIFICATE_REVOCATION_REASON_CESSATION_OF_OPERATION: _ClassVar[CertificateRevocationReason]
    CERTIFICATE_REVOCATION_REASON_PRIVILEGE_WITHDRAWN: _ClassVar[CertificateRevocationReason]
CREDENTIAL_KIND_UNSPECIFIED: CredentialKind
CREDENTIAL_KIND_NATURAL_PERSON: CredentialKind
CREDENTIAL_KIND_LEGAL_PERSON: CredentialKind
CREDENTIAL_KIND_ELECTRONIC_SEAL: CredentialKind
CREDENTIAL_STATUS_UNSPECIFIED: CredentialStatus
CREDENTIAL_STATUS_ACTIVE: CredentialStatus
CREDENTIAL_STATUS_REVOKED: CredentialStatus
CREDENTIAL_STATUS_RENEWED: CredentialStatus
CREDENTIAL_STATUS_EXPIRED: CredentialStatus
KEY_BACKEND_UNSPECIFIED: KeyBackend
KEY_BACKEND_SOFTWARE: KeyBackend
KEY_BACKEND_PKCS11: KeyBackend
CERTIFICATE_REVOCATION_REASON_UNSPECIFIED: CertificateRevocationReason
CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE: CertificateRevocationReason
CERTIFICATE_REVOCATION_REASON_AFFILIATION_CHANGED: CertificateRevocationReason
CERTIFICATE_REVOCATION_REASON_SUPERSEDED: CertificateRevocationReason
CERTIFICATE_REVOCATION_REASON_CESSATION_OF_OPERATION: CertificateRevocationReason
CERTIFICATE_REVOCATION_REASON_PRIVILEGE_WITHDRAWN: CertificateRevocationReason

class Credential(_message.Message):
    __slots__ = ("credential_id", "owner", "kind", "key_algorithm", "key_backend", "status", "certificate_chain", "not_before", "not_after", "max_signatures_per_authorization", "renewed_from", "renewed_by", "revocation_reason", "revoked_at", "certificate_serial")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_CHAIN_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_SIGNATURES_PER_AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    RENEWED_FROM_FIELD_NUMBER: _ClassVar[int]
    RENEWED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    owner: _party_pb2.PartyIdentifier
    kind: CredentialKind
    key_algorithm: _crypto_pb2.KeyAlgorithm
    key_backend: KeyBackend
    status: CredentialStatus
    certificate_chain: _containers.RepeatedScalarFieldContainer[bytes]
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    max_signatures_per_authorization: int
    renewed_from: str
    renewed_by: str
    revocation_reason: CertificateRevocationReason
    revoked_at: _timestamp_pb2.Timestamp
    certificate_serial: str
    def __init__(self, credential_id: _Optional[str] = ..., owner: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., kind: _Optional[_Union[CredentialKind, str]] = ..., key_algorithm: _Optional[_Union[_crypto_pb2.KeyAlgorithm, str]] = ..., key_backend: _Optional[_Union[KeyBackend, str]] = ..., status: _Optional[_Union[CredentialStatus, str]] = ..., certificate_chain: _Optional[_Iterable[bytes]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_signatures_per_authorization: _Optional[int] = ..., renewed_from: _Optional[str] = ..., renewed_by: _Optional[str] = ..., revocation_reason: _Optional[_Union[CertificateRevocationReason, str]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., certificate_serial: _Optional[str] = ...) -> None: ...

class CreateCredentialRequest(_message.Message):
    __slots__ = ("idempotency_key", "owner", "kind", "key_algorithm", "names", "authorization_proof", "key_backend")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    KEY_BACKEND_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    owner: _party_pb2.PartyIdentifier
    kind: CredentialKind
    key_algorithm: _crypto_pb2.KeyAlgorithm
    names: _party_pb2.PartyNames
    authorization_proof: str
    key_backend: KeyBackend
    def __init__(self, idempotency_key: _Optional[str] = ..., owner: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., kind: _Optional[_Union[CredentialKind, str]] = ..., key_algorithm: _Optional[_Union[_crypto_pb2.KeyAlgorithm, str]] = ..., names: _Optional[_Union[_party_pb2.PartyNames, _Mapping]] = ..., authorization_proof: _Optional[str] = ..., key_backend: _Optional[_Union[KeyBackend, str]] = ...) -> None: ...

class CreateCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: Credential
    def __init__(self, credential: _Optional[_Union[Credential, _Mapping]] = ...) -> None: ...

class ListCredentialsRequest(_message.Message):
    __slots__ = ("owner", "status", "page_size", "page_token", "authorization_proof")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    owner: _party_pb2.PartyIdentifier
    status: CredentialStatus
    page_size: int
    page_token: str
    authorization_proof: str
    def __init__(self, owner: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., status: _Optional[_Union[CredentialStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., authorization_proof: _Optional[str] = ...) -> None: ...

class ListCredentialsResponse(_message.Message):
    __slots__ = ("credentials", "next_page_token")
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.RepeatedCompositeFieldContainer[Credential]
    next_page_token: str
    def __init__(self, credentials: _Optional[_Iterable[_Union[Credential, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCredentialRequest(_message.Message):
    __slots__ = ("credential_id",)
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    def __init__(self, credential_id: _Optional[str] = ...) -> None: ...

class GetCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: Credential
    def __init__(self, credential: _Optional[_Union[Credential, _Mapping]] = ...) -> None: ...

class RevokeCredentialRequest(_message.Message):
    __slots__ = ("credential_id", "reason", "authorization_proof")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    reason: CertificateRevocationReason
    authorization_proof: str
    def __init__(self, credential_id: _Optional[str] = ..., reason: _Optional[_Union[CertificateRevocationReason, str]] = ..., authorization_proof: _Optional[str] = ...) -> None: ...

class RevokeCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: Credential
    def __init__(self, credential: _Optional[_Union[Credential, _Mapping]] = ...) -> None: ...

class RenewCredentialRequest(_message.Message):
    __slots__ = ("idempotency_key", "credential_id", "key_algorithm", "authorization_proof")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    credential_id: str
    key_algorithm: _crypto_pb2.KeyAlgorithm
    authorization_proof: str
    def __init__(self, idempotency_key: _Optional[str] = ..., credential_id: _Optional[str] = ..., key_algorithm: _Optional[_Union[_crypto_pb2.KeyAlgorithm, str]] = ..., authorization_proof: _Optional[str] = ...) -> None: ...

class RenewCredentialResponse(_message.Message):
    __slots__ = ("credential", "previous")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    credential: Credential
    previous: Credential
    def __init__(self, credential: _Optional[_Union[Credential, _Mapping]] = ..., previous: _Optional[_Union[Credential, _Mapping]] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("credential_id", "hashes", "hash_algorithm", "num_signatures", "authorization_proof", "description")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    HASH_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    NUM_SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    hash_algorithm: _crypto_pb2.HashAlgorithm
    num_signatures: int
    authorization_proof: str
    description: str
    def __init__(self, credential_id: _Optional[str] = ..., hashes: _Optional[_Iterable[bytes]] = ..., hash_algorithm: _Optional[_Union[_crypto_pb2.HashAlgorithm, str]] = ..., num_signatures: _Optional[int] = ..., authorization_proof: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("sad", "expires_at")
    SAD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    sad: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, sad: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignHashRequest(_message.Message):
    __slots__ = ("credential_id", "sad", "hashes", "hash_algorithm", "signature_algorithm")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    SAD_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    HASH_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    sad: str
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    hash_algorithm: _crypto_pb2.HashAlgorithm
    signature_algorithm: _crypto_pb2.SignatureAlgorithm
    def __init__(self, credential_id: _Optional[str] = ..., sad: _Optional[str] = ..., hashes: _Optional[_Iterable[bytes]] = ..., hash_algorithm: _Optional[_Union[_crypto_pb2.HashAlgorithm, str]] = ..., signature_algorithm: _Optional[_Union[_crypto_pb2.SignatureAlgorithm, str]] = ...) -> None: ...

class SignHashResponse(_message.Message):
    __slots__ = ("signatures",)
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    signatures: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, signatures: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CaCertificate(_message.Message):
    __slots__ = ("role", "certificate_der", "crl_url", "certificate_url")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    CRL_URL_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_URL_FIELD_NUMBER: _ClassVar[int]
    role: str
    certificate_der: bytes
    crl_url: str
    certificate_url: str
    def __init__(self, role: _Optional[str] = ..., certificate_der: _Optional[bytes] = ..., crl_url: _Optional[str] = ..., certificate_url: _Optional[str] = ...) -> None: ...

class GetTrustServiceInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTrustServiceInfoResponse(_message.Message):
    __slots__ = ("certificates", "ocsp_url", "tsa_url", "tsa_policy_oid")
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    OCSP_URL_FIELD_NUMBER: _ClassVar[int]
    TSA_URL_FIELD_NUMBER: _ClassVar[int]
    TSA_POLICY_OID_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[CaCertificate]
    ocsp_url: str
    tsa_url: str
    tsa_policy_oid: str
    def __init__(self, certificates: _Optional[_Iterable[_Union[CaCertificate, _Mapping]]] = ..., ocsp_url: _Optional[str] = ..., tsa_url: _Optional[str] = ..., tsa_policy_oid: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("sequence", "occurred_at", "action", "actor", "credential_id", "outcome", "details_json", "entry_hash", "previous_hash")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    occurred_at: _timestamp_pb2.Timestamp
    action: str
    actor: str
    credential_id: str
    outcome: str
    details_json: str
    entry_hash: bytes
    previous_hash: bytes
    def __init__(self, sequence: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ..., actor: _Optional[str] = ..., credential_id: _Optional[str] = ..., outcome: _Optional[str] = ..., details_json: _Optional[str] = ..., entry_hash: _Optional[bytes] = ..., previous_hash: _Optional[bytes] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("credential_id", "page_size", "page_token")
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credential_id: str
    page_size: int
    page_token: str
    def __init__(self, credential_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("intact", "entries_checked", "first_bad_sequence", "problem")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    entries_checked: int
    first_bad_sequence: int
    problem: str
    def __init__(self, intact: _Optional[bool] = ..., entries_checked: _Optional[int] = ..., first_bad_sequence: _Optional[int] = ..., problem: _Optional[str] = ...) -> None: ...
