"""build_server in-process: the parts that need no process boundary (health states, metrics)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from egov_common import telemetry
from egov_common.auth import Caller, CallerKind, current_caller
from egov_common.errors import InvalidArgument, NotFound, Unauthenticated
from egov_common.server import BuiltServer, GrpcService, build_server
from egov_common.settings import ServiceSettings
from egov_common.status import from_rpc_error
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

SERVICE = "egov.test.v1.Upper"


def _upper(request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> object:
    if not request.value:
        raise InvalidArgument("TEXT_EMPTY", "text is empty")
    if request.value.startswith("missing "):  # an error that quotes what it did not find
        raise NotFound(
            "TEXT_NOT_FOUND",
            f"no text like {request.value}",
            metadata={"text": request.value},
        )
    if request.value == "who":
        caller = current_caller()
        return wrappers_pb2.StringValue(value=f"{caller.kind.value}:{caller.subject}")
    return wrappers_pb2.StringValue(value=request.value.upper())


def _file_not_found(request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> object:
    # A name read from disk with surrogateescape: not text that UTF-8 can carry.
    name = b"report-\xff.pdf".decode("utf-8", "surrogateescape")
    raise NotFound("FILE_NOT_FOUND", f"no file {name}")


def _verify_token(token: str, *, peer_service: str | None) -> Caller:
    if token not in ("alice", "bob"):
        raise Unauthenticated("TOKEN_INVALID", "token not accepted")
    return Caller(CallerKind.PERSON, subject=token, peer_service=peer_service)


def _register(server: grpc.Server) -> None:
    missing = grpc.unary_unary_rpc_method_handler(
        _file_not_found,
        request_deserializer=wrappers_pb2.StringValue.FromString,
        response_serializer=wrappers_pb2.StringValue.SerializeToString,
    )
    handler = grpc.unary_unary_rpc_method_handler(
        _upper,
        request_deserializer=wrappers_pb2.StringValue.FromString,
        response_serializer=wrappers_pb2.StringValue.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Upper": handler, "File": missing}),)
    )


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def built(reader: InMemoryMetricReader) -> Iterator[BuiltServer]:
    tel = telemetry.setup("upper", metric_reader=reader, set_global=False)
    settings = ServiceSettings(service_name="upper", grpc_listen="127.0.0.1:0")
    server = build_server(
        settings, [GrpcService(SERVICE, _register)], telemetry=tel, token_verifier=_verify_token
    )
    server.start()
    yield server
    server.server.stop(None)
    tel.shutdown()


def _status(channel: grpc.Channel, name: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status)


def test_health_is_not_serving_until_ready_and_again_while_draining(built: BuiltServer) -> None:
    with grpc.insecure_channel(built.address) as channel:
        assert _status(channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
        built.set_serving()
        assert _status(channel, "") == health_pb2.HealthCheckResponse.SERVING
        assert _status(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
        built.health.enter_graceful_shutdown()
        assert _status(channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING


def _upper_stub(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/{SERVICE}/Upper",
        request_serializer=wrappers_pb2.StringValue.SerializeToString,
        response_deserializer=wrappers_pb2.StringValue.FromString,
    )


def test_calls_are_counted_by_method_and_code(
    built: BuiltServer, reader: InMemoryMetricReader
) -> None:
    with grpc.insecure_channel(built.address) as channel:
        upper = _upper_stub(channel)
        assert upper(wrappers_pb2.StringValue(value="ok"), timeout=5).value == "OK"
        with pytest.raises(grpc.RpcError):
            upper(wrappers_pb2.StringValue(value=""), timeout=5)
    data = reader.get_metrics_data()
    assert data is not None
    counts = {
        (p.attributes["rpc.method"], p.attributes["rpc.grpc.status_code"]): p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "egov.rpc.server.calls"
        for p in metric.data.data_points
    }
    assert counts[(f"/{SERVICE}/Upper", "OK")] == 1
    assert counts[(f"/{SERVICE}/Upper", "INVALID_ARGUMENT")] == 1


def test_draining_ends_the_worker_threads(built: BuiltServer) -> None:
    before = set(threading.enumerate())
    with grpc.insecure_channel(built.address) as channel:
        upper = _upper_stub(channel)
        assert upper(wrappers_pb2.StringValue(value="a"), timeout=5).value == "A"
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("grpc-")]
    assert workers  # the call ran on one, which stays idle for the next call
    built.drain(grace=1)
    for thread in workers:
        thread.join(10)
        assert not thread.is_alive()


def test_an_error_with_a_huge_text_still_arrives_with_its_code_and_reason(
    built: BuiltServer,
) -> None:
    # 20 kB quoted into the message and metadata would make trailers that grpc refuses
    # (RESOURCE_EXHAUSTED, the reason lost); the status is cut to fit instead.
    with grpc.insecure_channel(built.address) as channel, pytest.raises(grpc.RpcError) as exc:
        _upper_stub(channel)(wrappers_pb2.StringValue(value="missing " + "ก" * 20_000), timeout=5)
    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    error = from_rpc_error(exc.value)
    assert error.reason == "TEXT_NOT_FOUND"
    assert error.message.startswith("no text like missing ก")
    assert error.metadata["text"].startswith("missing ก")


def test_an_error_whose_text_is_not_utf8_still_arrives_with_its_code_and_reason(
    built: BuiltServer,
) -> None:
    with grpc.insecure_channel(built.address) as channel, pytest.raises(grpc.RpcError) as exc:
        channel.unary_unary(
            f"/{SERVICE}/File",
            request_serializer=wrappers_pb2.StringValue.SerializeToString,
            response_deserializer=wrappers_pb2.StringValue.FromString,
        )(wrappers_pb2.StringValue(), timeout=5)
    assert exc.value.code() is grpc.StatusCode.NOT_FOUND  # not UNKNOWN
    assert "Exception calling application" not in (exc.value.details() or "")
    error = from_rpc_error(exc.value)
    assert error.reason == "FILE_NOT_FOUND"
    assert error.message.startswith("no file report-")


def test_a_call_with_two_authorization_headers_is_refused(built: BuiltServer) -> None:
    with grpc.insecure_channel(built.address) as channel:
        upper = _upper_stub(channel)
        who = wrappers_pb2.StringValue(value="who")
        alice = ("authorization", "Bearer alice")
        assert upper(who, metadata=(alice,), timeout=5).value == "person:alice"
        # Which header would win depends on who reads it (a proxy, this server): neither does.
        for headers in ((alice, ("authorization", "Bearer bob")), (alice, alice)):
            with pytest.raises(grpc.RpcError) as exc:
                upper(who, metadata=headers, timeout=5)
            assert exc.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert from_rpc_error(exc.value).reason == "TOKEN_MALFORMED"
