import datetime

from egov.type.v1 import party_pb2 as _party_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProofingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROOFING_STATE_UNSPECIFIED: _ClassVar[ProofingState]
    PROOFING_STATE_OPEN: _ClassVar[ProofingState]
    PROOFING_STATE_COMPLETED: _ClassVar[ProofingState]
    PROOFING_STATE_FAILED: _ClassVar[ProofingState]
    PROOFING_STATE_EXPIRED: _ClassVar[ProofingState]

class EvidenceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_KIND_UNSPECIFIED: _ClassVar[EvidenceKind]
    EVIDENCE_KIND_ID_CARD_CHIP: _ClassVar[EvidenceKind]
    EVIDENCE_KIND_PASSPORT: _ClassVar[EvidenceKind]
    EVIDENCE_KIND_IDP_KYC: _ClassVar[EvidenceKind]
    EVIDENCE_KIND_IN_PERSON: _ClassVar[EvidenceKind]

class EvidenceOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_OUTCOME_UNSPECIFIED: _ClassVar[EvidenceOutcome]
    EVIDENCE_OUTCOME_VERIFIED: _ClassVar[EvidenceOutcome]
    EVIDENCE_OUTCOME_REJECTED: _ClassVar[EvidenceOutcome]
    EVIDENCE_OUTCOME_MISMATCH: _ClassVar[EvidenceOutcome]
PROOFING_STATE_UNSPECIFIED: ProofingState
PROOFING_STATE_OPEN: ProofingState
PROOFING_STATE_COMPLETED: ProofingState
PROOFING_STATE_FAILED: ProofingState
PROOFING_STATE_EXPIRED: ProofingState
EVIDENCE_KIND_UNSPECIFIED: EvidenceKind
EVIDENCE_KIND_ID_CARD_CHIP: EvidenceKind
EVIDENCE_KIND_PASSPORT: EvidenceKind
EVIDENCE_KIND_IDP_KYC: EvidenceKind
EVIDENCE_KIND_IN_PERSON: EvidenceKind
EVIDENCE_OUTCOME_UNSPECIFIED: EvidenceOutcome
EVIDENCE_OUTCOME_VERIFIED: EvidenceOutcome
EVIDENCE_OUTCOME_REJECTED: EvidenceOutcome
EVIDENCE_OUTCOME_MISMATCH: EvidenceOutcome

class PersonAttributes(_message.Message):
    __slots__ = ("names", "birth_date")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    names: _party_pb2.PartyNames
    birth_date: str
    def __init__(self, names: _Optional[_Union[_party_pb2.PartyNames, _Mapping]] = ..., birth_date: _Optional[str] = ...) -> None: ...

class IdCardChipEvidence(_message.Message):
    __slots__ = ("national_id", "attributes", "laser_code", "expiry_date")
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    LASER_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_DATE_FIELD_NUMBER: _ClassVar[int]
    national_id: str
    attributes: PersonAttributes
    laser_code: str
    expiry_date: str
    def __init__(self, national_id: _Optional[str] = ..., attributes: _Optional[_Union[PersonAttributes, _Mapping]] = ..., laser_code: _Optional[str] = ..., expiry_date: _Optional[str] = ...) -> None: ...

class PassportEvidence(_message.Message):
    __slots__ = ("document_number", "issuing_country", "attributes", "expiry_date", "chip_verified")
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUING_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_DATE_FIELD_NUMBER: _ClassVar[int]
    CHIP_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    document_number: str
    issuing_country: str
    attributes: PersonAttributes
    expiry_date: str
    chip_verified: bool
    def __init__(self, document_number: _Optional[str] = ..., issuing_country: _Optional[str] = ..., attributes: _Optional[_Union[PersonAttributes, _Mapping]] = ..., expiry_date: _Optional[str] = ..., chip_verified: _Optional[bool] = ...) -> None: ...

class IdpKycEvidence(_message.Message):
    __slots__ = ("provider", "assertion")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    provider: str
    assertion: str
    def __init__(self, provider: _Optional[str] = ..., assertion: _Optional[str] = ...) -> None: ...

class InPersonEvidence(_message.Message):
    __slots__ = ("officer_id", "location", "attributes", "photo_match")
    OFFICER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PHOTO_MATCH_FIELD_NUMBER: _ClassVar[int]
    officer_id: str
    location: str
    attributes: PersonAttributes
    photo_match: bool
    def __init__(self, officer_id: _Optional[str] = ..., location: _Optional[str] = ..., attributes: _Optional[_Union[PersonAttributes, _Mapping]] = ..., photo_match: _Optional[bool] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("id_card_chip", "passport", "idp_kyc", "in_person")
    ID_CARD_CHIP_FIELD_NUMBER: _ClassVar[int]
    PASSPORT_FIELD_NUMBER: _ClassVar[int]
    IDP_KYC_FIELD_NUMBER: _ClassVar[int]
    IN_PERSON_FIELD_NUMBER: _ClassVar[int]
    id_card_chip: IdCardChipEvidence
    passport: PassportEvidence
    idp_kyc: IdpKycEvidence
    in_person: InPersonEvidence
    def __init__(self, id_card_chip: _Optional[_Union[IdCardChipEvidence, _Mapping]] = ..., passport: _Optional[_Union[PassportEvidence, _Mapping]] = ..., idp_kyc: _Optional[_Union[IdpKycEvidence, _Mapping]] = ..., in_person: _Optional[_Union[InPersonEvidence, _Mapping]] = ...) -> None: ...

class EvidenceResult(_message.Message):
    __slots__ = ("kind", "outcome", "reason", "source", "verified_at")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    kind: EvidenceKind
    outcome: EvidenceOutcome
    reason: str
    source: str
    verified_at: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[EvidenceKind, str]] = ..., outcome: _Optional[_Union[EvidenceOutcome, str]] = ..., reason: _Optional[str] = ..., source: _Optional[str] = ..., verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProofingSession(_message.Message):
    __slots__ = ("session_id", "subject", "target_ial", "state", "evidence", "achieved_ial", "failure_reason", "created_at", "expires_at", "person_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_IAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_IAL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    subject: _party_pb2.PartyIdentifier
    target_ial: str
    state: ProofingState
    evidence: _containers.RepeatedCompositeFieldContainer[EvidenceResult]
    achieved_ial: str
    failure_reason: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    person_id: str
    def __init__(self, session_id: _Optional[str] = ..., subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., target_ial: _Optional[str] = ..., state: _Optional[_Union[ProofingState, str]] = ..., evidence: _Optional[_Iterable[_Union[EvidenceResult, _Mapping]]] = ..., achieved_ial: _Optional[str] = ..., failure_reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., person_id: _Optional[str] = ...) -> None: ...

class StartProofingRequest(_message.Message):
    __slots__ = ("subject", "target_ial")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_IAL_FIELD_NUMBER: _ClassVar[int]
    subject: _party_pb2.PartyIdentifier
    target_ial: str
    def __init__(self, subject: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., target_ial: _Optional[str] = ...) -> None: ...

class StartProofingResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: ProofingSession
    def __init__(self, session: _Optional[_Union[ProofingSession, _Mapping]] = ...) -> None: ...

class SubmitEvidenceRequest(_message.Message):
    __slots__ = ("session_id", "evidence")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    evidence: Evidence
    def __init__(self, session_id: _Optional[str] = ..., evidence: _Optional[_Union[Evidence, _Mapping]] = ...) -> None: ...

class SubmitEvidenceResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: ProofingSession
    def __init__(self, session: _Optional[_Union[ProofingSession, _Mapping]] = ...) -> None: ...

class CompleteProofingRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CompleteProofingResponse(_message.Message):
    __slots__ = ("session", "enrolment_code")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    session: ProofingSession
    enrolment_code: str
    def __init__(self, session: _Optional[_Union[ProofingSession, _Mapping]] = ..., enrolment_code: _Optional[str] = ...) -> None: ...

class GetProofingRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetProofingResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: ProofingSession
    def __init__(self, session: _Optional[_Union[ProofingSession, _Mapping]] = ...) -> None: ...
