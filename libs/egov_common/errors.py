"""Domain errors: one base, one gRPC code each, a machine-readable reason.

Domain code raises these; the server's error interceptor (``egov_common.server``) turns them into
``google.rpc.Status`` with ``ErrorInfo(reason, domain="trust.egov", metadata)`` and ``BadRequest``
field violations. This module imports no grpc so ``domain/`` packages may use it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ERROR_DOMAIN",
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "Code",
    "DataLoss",
    "DeadlineExceeded",
    "EgovError",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "error_for_code",
]

#: ``ErrorInfo.domain`` of every error this platform raises.
ERROR_DOMAIN = "trust.egov"

_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,62}[A-Z0-9]")


class Code(enum.StrEnum):
    """gRPC status codes by name (mirrors ``grpc.StatusCode`` without importing grpc)."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field (``google.rpc.BadRequest.FieldViolation``).

    ``field`` is the path in the request message, e.g. ``"document.sha256"``.
    """

    field: str
    description: str


class EgovError(Exception):
    """Base of every error that crosses a service boundary.

    ``reason`` is an UPPER_SNAKE_CASE constant a client can switch on (``SAD_EXPIRED``);
    ``message`` is for humans (English, no personal data, no secrets); ``metadata`` adds
    machine-readable detail (string values only, as ``ErrorInfo.metadata``).
    """

    code: ClassVar[Code] = Code.UNKNOWN

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        field_violations: Iterable[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if not _REASON.fullmatch(reason):
            raise ValueError(f"error reason must be UPPER_SNAKE_CASE, got {reason!r}")
        self.reason = reason
        self.message = message or reason
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.code.value} {self.reason}: {self.message}"


class Cancelled(EgovError):
    code = Code.CANCELLED


class Unknown(EgovError):
    code = Code.UNKNOWN


class InvalidArgument(EgovError):
    code = Code.INVALID_ARGUMENT


class DeadlineExceeded(EgovError):
    code = Code.DEADLINE_EXCEEDED


class NotFound(EgovError):
    code = Code.NOT_FOUND


class AlreadyExists(EgovError):
    code = Code.ALREADY_EXISTS


class PermissionDenied(EgovError):
    code = Code.PERMISSION_DENIED


class ResourceExhausted(EgovError):
    code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(EgovError):
    code = Code.FAILED_PRECONDITION


class Aborted(EgovError):
    code = Code.ABORTED


class OutOfRange(EgovError):
    code = Code.OUT_OF_RANGE


class Unimplemented(EgovError):
    code = Code.UNIMPLEMENTED


class Internal(EgovError):
    code = Code.INTERNAL


class Unavailable(EgovError):
    code = Code.UNAVAILABLE


class DataLoss(EgovError):
    code = Code.DATA_LOSS


class Unauthenticated(EgovError):
    code = Code.UNAUTHENTICATED


_BY_CODE: dict[Code, type[EgovError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def error_for_code(code: Code) -> type[EgovError]:
    """The ``EgovError`` subclass for ``code`` (``Unknown`` for ``OK`` or anything unmapped)."""
    return _BY_CODE.get(code, Unknown)
