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

class JuristicPersonKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JURISTIC_PERSON_KIND_UNSPECIFIED: _ClassVar[JuristicPersonKind]
    JURISTIC_PERSON_KIND_COMPANY: _ClassVar[JuristicPersonKind]
    JURISTIC_PERSON_KIND_AGENCY: _ClassVar[JuristicPersonKind]

class RepresentationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPRESENTATION_STATUS_UNSPECIFIED: _ClassVar[RepresentationStatus]
    REPRESENTATION_STATUS_ACTIVE: _ClassVar[RepresentationStatus]
    REPRESENTATION_STATUS_REVOKED: _ClassVar[RepresentationStatus]
    REPRESENTATION_STATUS_EXPIRED: _ClassVar[RepresentationStatus]
JURISTIC_PERSON_KIND_UNSPECIFIED: JuristicPersonKind
JURISTIC_PERSON_KIND_COMPANY: JuristicPersonKind
JURISTIC_PERSON_KIND_AGENCY: JuristicPersonKind
REPRESENTATION_STATUS_UNSPECIFIED: RepresentationStatus
REPRESENTATION_STATUS_ACTIVE: RepresentationStatus
REPRESENTATION_STATUS_REVOKED: RepresentationStatus
REPRESENTATION_STATUS_EXPIRED: RepresentationStatus

class JuristicPerson(_message.Message):
    __slots__ = ("identifier", "kind", "names", "directors", "registered_at")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    DIRECTORS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    identifier: _party_pb2.PartyIdentifier
    kind: JuristicPersonKind
    names: _party_pb2.PartyNames
    directors: _containers.RepeatedCompositeFieldContainer[_party_pb2.PartyIdentifier]
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, identifier: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., kind: _Optional[_Union[JuristicPersonKind, str]] = ..., names: _Optional[_Union[_party_pb2.PartyNames, _Mapping]] = ..., directors: _Optional[_Iterable[_Union[_party_pb2.PartyIdentifier, _Mapping]]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Representation(_message.Message):
    __slots__ = ("representation_id", "juristic_person", "representative", "role", "powers", "valid_from", "valid_until", "granted_by", "evidence", "status")
    REPRESENTATION_ID_FIELD_NUMBER: _ClassVar[int]
    JURISTIC_PERSON_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    POWERS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    representation_id: str
    juristic_person: _party_pb2.PartyIdentifier
    representative: _party_pb2.PartyIdentifier
    role: str
    powers: _containers.RepeatedScalarFieldContainer[str]
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    granted_by: _party_pb2.PartyIdentifier
    evidence: str
    status: RepresentationStatus
    def __init__(self, representation_id: _Optional[str] = ..., juristic_person: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., representative: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., role: _Optional[str] = ..., powers: _Optional[_Iterable[str]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granted_by: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., evidence: _Optional[str] = ..., status: _Optional[_Union[RepresentationStatus, str]] = ...) -> None: ...

class RegisterJuristicPersonRequest(_message.Message):
    __slots__ = ("identifier", "kind", "names", "directors")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    DIRECTORS_FIELD_NUMBER: _ClassVar[int]
    identifier: _party_pb2.PartyIdentifier
    kind: JuristicPersonKind
    names: _party_pb2.PartyNames
    directors: _containers.RepeatedCompositeFieldContainer[_party_pb2.PartyIdentifier]
    def __init__(self, identifier: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., kind: _Optional[_Union[JuristicPersonKind, str]] = ..., names: _Optional[_Union[_party_pb2.PartyNames, _Mapping]] = ..., directors: _Optional[_Iterable[_Union[_party_pb2.PartyIdentifier, _Mapping]]] = ...) -> None: ...

class RegisterJuristicPersonResponse(_message.Message):
    __slots__ = ("juristic_person",)
    JURISTIC_PERSON_FIELD_NUMBER: _ClassVar[int]
    juristic_person: JuristicPerson
    def __init__(self, juristic_person: _Optional[_Union[JuristicPerson, _Mapping]] = ...) -> None: ...

class GetJuristicPersonRequest(_message.Message):
    __slots__ = ("identifier",)
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    identifier: _party_pb2.PartyIdentifier
    def __init__(self, identifier: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ...) -> None: ...

class GetJuristicPersonResponse(_message.Message):
    __slots__ = ("juristic_person",)
    JURISTIC_PERSON_FIELD_NUMBER: _ClassVar[int]
    juristic_person: JuristicPerson
    def __init__(self, juristic_person: _Optional[_Union[JuristicPerson, _Mapping]] = ...) -> None: ...

class GrantRepresentationRequest(_message.Message):
    __slots__ = ("juristic_person", "representative", "role", "powers", "valid_from", "valid_until", "grantor_id_token")
    JURISTIC_PERSON_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    POWERS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    GRANTOR_ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    juristic_person: _party_pb2.PartyIdentifier
    representative: _party_pb2.PartyIdentifier
    role: str
    powers: _containers.RepeatedScalarFieldContainer[str]
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    grantor_id_token: str
    def __init__(self, juristic_person: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., representative: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., role: _Optional[str] = ..., powers: _Optional[_Iterable[str]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., grantor_id_token: _Optional[str] = ...) -> None: ...

class GrantRepresentationResponse(_message.Message):
    __slots__ = ("representation",)
    REPRESENTATION_FIELD_NUMBER: _ClassVar[int]
    representation: Representation
    def __init__(self, representation: _Optional[_Union[Representation, _Mapping]] = ...) -> None: ...

class RevokeRepresentationRequest(_message.Message):
    __slots__ = ("representation_id", "revoker_id_token")
    REPRESENTATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKER_ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    representation_id: str
    revoker_id_token: str
    def __init__(self, representation_id: _Optional[str] = ..., revoker_id_token: _Optional[str] = ...) -> None: ...

class RevokeRepresentationResponse(_message.Message):
    __slots__ = ("representation",)
    REPRESENTATION_FIELD_NUMBER: _ClassVar[int]
    representation: Representation
    def __init__(self, representation: _Optional[_Union[Representation, _Mapping]] = ...) -> None: ...

class ListRepresentationsRequest(_message.Message):
    __slots__ = ("juristic_person", "representative", "page_size", "page_token")
    JURISTIC_PERSON_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    juristic_person: _party_pb2.PartyIdentifier
    representative: _party_pb2.PartyIdentifier
    page_size: int
    page_token: str
    def __init__(self, juristic_person: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., representative: _Optional[_Union[_party_pb2.PartyIdentifier, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRepresentationsResponse(_message.Message):
    __slots__ = ("representations", "next_page_token")
    REPRESENTATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    representations: _containers.RepeatedCompositeFieldContainer[Representation]
    next_page_token: str
    def __init__(self, representations: _Optional[_Iterable[_Union[Representation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
