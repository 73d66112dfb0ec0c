import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetPasswordRequest(_message.Message):
    __slots__ = ("person_id", "enrolment_code", "login_session_id", "new_password", "username")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    LOGIN_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    enrolment_code: str
    login_session_id: str
    new_password: str
    username: str
    def __init__(self, person_id: _Optional[str] = ..., enrolment_code: _Optional[str] = ..., login_session_id: _Optional[str] = ..., new_password: _Optional[str] = ..., username: _Optional[str] = ...) -> None: ...

class SetPasswordResponse(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class EnrolTotpRequest(_message.Message):
    __slots__ = ("login_session_id",)
    LOGIN_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    login_session_id: str
    def __init__(self, login_session_id: _Optional[str] = ...) -> None: ...

class EnrolTotpResponse(_message.Message):
    __slots__ = ("otpauth_uri",)
    OTPAUTH_URI_FIELD_NUMBER: _ClassVar[int]
    otpauth_uri: str
    def __init__(self, otpauth_uri: _Optional[str] = ...) -> None: ...

class ConfirmTotpRequest(_message.Message):
    __slots__ = ("login_session_id", "code")
    LOGIN_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    login_session_id: str
    code: str
    def __init__(self, login_session_id: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class ConfirmTotpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("login_session_id", "public_key_der", "display_name")
    LOGIN_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    login_session_id: str
    public_key_der: bytes
    display_name: str
    def __init__(self, login_session_id: _Optional[str] = ..., public_key_der: _Optional[bytes] = ..., display_name: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("client_id", "username", "password", "totp_code")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOTP_CODE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    username: str
    password: str
    totp_code: str
    def __init__(self, client_id: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., totp_code: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("login_session_id", "aal", "amr", "expires_at")
    LOGIN_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AAL_FIELD_NUMBER: _ClassVar[int]
    AMR_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    login_session_id: str
    aal: str
    amr: _containers.RepeatedScalarFieldContainer[str]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, login_session_id: _Optional[str] = ..., aal: _Optional[str] = ..., amr: _Optional[_Iterable[str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BackchannelAuthenticateRequest(_message.Message):
    __slots__ = ("client_id", "client_assertion", "login_hint", "binding_message", "scope", "acr_values")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ASSERTION_FIELD_NUMBER: _ClassVar[int]
    LOGIN_HINT_FIELD_NUMBER: _ClassVar[int]
    BINDING_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ACR_VALUES_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_assertion: str
    login_hint: str
    binding_message: str
    scope: str
    acr_values: str
    def __init__(self, client_id: _Optional[str] = ..., client_assertion: _Optional[str] = ..., login_hint: _Optional[str] = ..., binding_message: _Optional[str] = ..., scope: _Optional[str] = ..., acr_values: _Optional[str] = ...) -> None: ...

class BackchannelAuthenticateResponse(_message.Message):
    __slots__ = ("auth_req_id", "expires_in", "interval")
    AUTH_REQ_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    auth_req_id: str
    expires_in: int
    interval: int
    def __init__(self, auth_req_id: _Optional[str] = ..., expires_in: _Optional[int] = ..., interval: _Optional[int] = ...) -> None: ...

class PendingApproval(_message.Message):
    __slots__ = ("auth_req_id", "client_name", "binding_message", "expires_at")
    AUTH_REQ_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    BINDING_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    auth_req_id: str
    client_name: str
    binding_message: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, auth_req_id: _Optional[str] = ..., client_name: _Optional[str] = ..., binding_message: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPendingApprovalsRequest(_message.Message):
    __slots__ = ("device_id", "device_proof")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROOF_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    device_proof: str
    def __init__(self, device_id: _Optional[str] = ..., device_proof: _Optional[str] = ...) -> None: ...

class ListPendingApprovalsResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[PendingApproval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[PendingApproval, _Mapping]]] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("device_id", "auth_req_id", "approve", "device_proof")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQ_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROOF_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    auth_req_id: str
    approve: bool
    device_proof: str
    def __init__(self, device_id: _Optional[str] = ..., auth_req_id: _Optional[str] = ..., approve: _Optional[bool] = ..., device_proof: _Optional[str] = ...) -> None: ...

class DecideApprovalResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
