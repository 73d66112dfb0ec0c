from __future__ import annotations

import grpc
from egov_common.errors import FieldViolation, InvalidArgument, Unavailable
from egov_common.status import error_info, from_rpc_error, to_status_proto
from google.rpc import error_details_pb2


class _FakeCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as a client sees it, carrying the trailing status of a server."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers

    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def test_error_round_trips_through_google_rpc_status() -> None:
    error = InvalidArgument(
        "HASH_LENGTH_INVALID",
        "sha256 must be 32 bytes",
        field_violations=(FieldViolation("sha256", "must be 32 bytes"),),
        metadata={"length": "31"},
    )
    status = to_status_proto(error)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.domain == "trust.egov"
    call = _FakeCall(
        grpc.StatusCode.INVALID_ARGUMENT,
        status.message,
        (("grpc-status-details-bin", status.SerializeToString()),),
    )
    back = from_rpc_error(call)
    assert isinstance(back, InvalidArgument)
    assert (back.reason, back.message, back.metadata) == (
        "HASH_LENGTH_INVALID",
        "sha256 must be 32 bytes",
        {"length": "31"},
    )
    assert back.field_violations == error.field_violations


def test_plain_grpc_error_keeps_its_code_as_reason() -> None:
    back = from_rpc_error(_FakeCall(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert isinstance(back, Unavailable)
    assert (back.reason, back.message) == ("UNAVAILABLE", "connection refused")


def test_details_that_contradict_the_status_code_are_not_believed() -> None:
    # A foreign server or a proxy in between answered UNAVAILABLE with trailers that say
    # NOT_FOUND: the client gets the code it was sent, not a ValueError out of the library.
    detailed = to_status_proto(InvalidArgument("DOCUMENT_NOT_FOUND", "no such document"))
    detailed.code = 5  # NOT_FOUND
    call = _FakeCall(
        grpc.StatusCode.UNAVAILABLE,
        "upstream connect error",
        (("grpc-status-details-bin", detailed.SerializeToString()),),
    )
    back = from_rpc_error(call)
    assert isinstance(back, Unavailable)
    assert (back.reason, back.message) == ("UNAVAILABLE", "upstream connect error")
    assert error_info(call) is None


def test_details_with_another_message_still_give_the_reason() -> None:
    # The status message is sent twice (grpc-message and the details); a proxy that rewrote
    # one of them does not hide the reason the server gave.
    status = to_status_proto(Unavailable("JWKS_UNAVAILABLE", "the key set is unreachable"))
    call = _FakeCall(
        grpc.StatusCode.UNAVAILABLE,
        "rewritten by a proxy",
        (("grpc-status-details-bin", status.SerializeToString()),),
    )
    back = from_rpc_error(call)
    assert isinstance(back, Unavailable)
    assert (back.reason, back.message) == ("JWKS_UNAVAILABLE", "rewritten by a proxy")
    info = error_info(call)
    assert info is not None and info.reason == "JWKS_UNAVAILABLE"


def test_undecodable_details_leave_the_code_as_reason() -> None:
    call = _FakeCall(
        grpc.StatusCode.INTERNAL,
        "broken",
        (("grpc-status-details-bin", b"\xff\xff\xff not a status"),),
    )
    back = from_rpc_error(call)
    assert (back.code.value, back.reason, back.message) == ("INTERNAL", "INTERNAL", "broken")
