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


def grpc_code(code: Code) -> grpc.StatusCode:
    return grpc.StatusCode[code.value]


def to_status_proto(error: EgovError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``error``: ErrorInfo always, BadRequest with violations."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    details = [_pack(info)]
    if error.field_violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.field_violations
            ]
        )
        details.append(_pack(bad_request))
    return status_pb2.Status(
        code=getattr(code_pb2, error.code.value), message=error.message, details=details
    )


def to_grpc_status(error: EgovError) -> grpc.Status:
    """What ``context.abort_with_status`` takes."""
    return rpc_status.to_status(to_status_proto(error))


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ``ErrorInfo`` detail of a failed call, if the server sent one."""
    status = rpc_status.from_call(err)
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
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
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
