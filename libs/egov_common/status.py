"""``EgovError`` <-> ``google.rpc.Status`` with ``ErrorInfo`` and ``BadRequest``: one place.

The server's error interceptor uses :func:`to_grpc_status`; clients use :func:`from_rpc_error` to
get the code and reason back::

    try:
        stub.GetDocument(request)
    except grpc.RpcError as err:
        error = from_rpc_error(err)
        if error.reason == "DOCUMENT_NOT_FOUND": ...
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from egov_common.errors import (
    ERROR_DOMAIN,
    Code,
    EgovError,
    FieldViolation,
    error_for_code,
)

__all__ = ["error_info", "from_rpc_error", "grpc_code", "to_grpc_status", "to_status_proto"]

#: The trailer that carries the ``google.rpc.Status`` (as ``grpc_status`` names it).
_DETAILS_KEY = "grpc-status-details-bin"
# The status travels in trailers, which a client refuses above 8 to 16 KiB (grpc's metadata
# limits; the call then fails with RESOURCE_EXHAUSTED and its reason is lost). The message goes
# twice, in grpc-message (percent-encoded: a Thai character takes 9 bytes there) and in the
# details (base64: a third more), so the texts are cut to fit well below that.
_MESSAGE_BYTES = 512
#: A metadata key or value, a field path or a violation's description.
_TEXT_BYTES = 256
#: ErrorInfo metadata and BadRequest field violations, together; what does not fit is left out.
_DETAILS_BYTES = 2048


def grpc_code(code: Code) -> grpc.StatusCode:
    return grpc.StatusCode[code.value]


def to_status_proto(error: EgovError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``error``: ErrorInfo always, BadRequest with violations.

    Texts are made valid UTF-8 and cut to a size every client accepts (``...`` marks a cut);
    metadata entries and violations beyond that size are left out. Code and reason always stay.
    """
    room = _DETAILS_BYTES
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    for key, value in error.metadata.items():
        key, value = _clip(key, _TEXT_BYTES), _clip(value, _TEXT_BYTES)
        size = len(key.encode()) + len(value.encode()) + 8  # with the map entry's framing
        if size > room:
            break
        info.metadata[key] = value
        room -= size
    details = [_pack(info)]
    violations = []
    for v in error.field_violations:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field, _TEXT_BYTES), description=_clip(v.description, _TEXT_BYTES)
        )
        size = violation.ByteSize() + 4
        if size > room:
            break
        violations.append(violation)
        room -= size
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    return status_pb2.Status(
        code=getattr(code_pb2, error.code.value),
        message=_clip(error.message, _MESSAGE_BYTES),
        details=details,
    )


def _clip(text: str, limit: int) -> str:
    """``text`` as valid UTF-8 (a lone surrogate becomes ``?``) of at most ``limit`` bytes."""
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        data = data[: limit - 3].decode("utf-8", "ignore").encode() + b"..."
    return data.decode()


def to_grpc_status(error: EgovError) -> grpc.Status:
    """What ``context.abort_with_status`` takes."""
    return rpc_status.to_status(to_status_proto(error))


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _details_of(err: grpc.RpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` a failed call carries in its trailers, if any that is well
    formed and of the call's own code. A proxy or a foreign server may send details that
    contradict the code (``grpc_status.rpc_status.from_call`` raises then): the code wins."""
    if not isinstance(err, grpc.Call):
        return None
    for key, value in err.trailing_metadata() or ():
        if key == _DETAILS_KEY:
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                return None
            return status if status.code == err.code().value[0] else None
    return None


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ``ErrorInfo`` detail of a failed call, if the server sent one."""
    status = _details_of(err)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def from_rpc_error(err: grpc.RpcError) -> EgovError:
    """The ``EgovError`` a failed call carries (reason from ``ErrorInfo``, else the code name).

    Works for errors raised by any gRPC server: without rich details, ``reason`` is the status
    code name (``UNAVAILABLE``) and ``message`` the status details.
    """
    code_name = err.code().name if isinstance(err, grpc.Call) else "UNKNOWN"
    message = (err.details() if isinstance(err, grpc.Call) else str(err)) or code_name
    code = Code(code_name) if code_name in Code.__members__ else Code.UNKNOWN
    reason = code.value
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    status = _details_of(err)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason or reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    error_cls = error_for_code(code)
    try:
        return error_cls(reason, message, field_violations=violations, metadata=metadata)
    except ValueError:  # a foreign server's reason that is not UPPER_SNAKE_CASE
        return error_cls(code.value, message, field_violations=violations, metadata=metadata)
