from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentifierNamespace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_NAMESPACE_UNSPECIFIED: _ClassVar[IdentifierNamespace]
    IDENTIFIER_NAMESPACE_TH_PID: _ClassVar[IdentifierNamespace]
    IDENTIFIER_NAMESPACE_TH_JUR: _ClassVar[IdentifierNamespace]
    IDENTIFIER_NAMESPACE_PASSPORT: _ClassVar[IdentifierNamespace]
IDENTIFIER_NAMESPACE_UNSPECIFIED: IdentifierNamespace
IDENTIFIER_NAMESPACE_TH_PID: IdentifierNamespace
IDENTIFIER_NAMESPACE_TH_JUR: IdentifierNamespace
IDENTIFIER_NAMESPACE_PASSPORT: IdentifierNamespace

class PartyIdentifier(_message.Message):
    __slots__ = ("namespace", "value")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    namespace: IdentifierNamespace
    value: str
    def __init__(self, namespace: _Optional[_Union[IdentifierNamespace, str]] = ..., value: _Optional[str] = ...) -> None: ...

class PartyNames(_message.Message):
    __slots__ = ("given_name_th", "family_name_th", "given_name_en", "family_name_en", "organization_name_th", "organization_name_en")
    GIVEN_NAME_TH_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_TH_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_TH_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    organization_name_th: str
    organization_name_en: str
    def __init__(self, given_name_th: _Optional[str] = ..., family_name_th: _Optional[str] = ..., given_name_en: _Optional[str] = ..., family_name_en: _Optional[str] = ..., organization_name_th: _Optional[str] = ..., organization_name_en: _Optional[str] = ...) -> None: ...
