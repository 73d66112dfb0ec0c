"""egov_common's server bootstrap, exercised through a tiny service run as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from egov_common import telemetry
from egov_common.channels import open_channel
from egov_common.settings import ServiceSettings
from egov_common.status import from_rpc_error
from egov_testing.processes import ServiceFailedToStart, ServiceProcess, start_service
from google.protobuf import empty_pb2, wrappers_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

HERE = Path(__file__).parent
SERVICE = "egov.test.v1.EchoService"


def echo_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "EGOV_ECHO_REALM": "test", **extra}


def unary(channel: grpc.Channel, method: str, response: type) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("echo")
    env = echo_env(
        EGOV_ECHO_MAX_MESSAGE_BYTES=str(64 * 1024),
        EGOV_ECHO_TRACE_FILE=str(data_dir / "spans.jsonl"),
    )
    with start_service("echo_service", env, name="ECHO", data_dir=data_dir, http=False) as svc:
        yield svc


@pytest.fixture
def channel(echo: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(echo.grpc_address) as ch:
        yield ch


def test_health_reports_serving_for_server_and_service(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_deadline_exceeded_returns_deadline_exceeded(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        unary(channel, "Slow", empty_pb2.Empty)(wrappers_pb2.DoubleValue(value=30), timeout=0.3)
    assert exc.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_servicer_sees_the_callers_deadline(channel: grpc.Channel) -> None:
    reply = unary(channel, "Remaining", wrappers_pb2.DoubleValue)(empty_pb2.Empty(), timeout=20)
    # As gRPC carries it: grpc-timeout is rounded up on the wire (core keeps a few significant
    # digits, 100 ms at 20 s), so the servicer may see up to 0.1 s more than was asked.
    assert 19 < reply.value <= 20.1
    no_deadline = unary(channel, "Remaining", wrappers_pb2.DoubleValue)(empty_pb2.Empty())
    assert no_deadline.value == -1.0


def test_outgoing_call_inherits_the_incoming_deadline(channel: grpc.Channel) -> None:
    # Relay calls Slow(30 s) with no timeout of its own: it must give up with our deadline.
    with pytest.raises(grpc.RpcError) as exc:
        unary(channel, "Relay", empty_pb2.Empty)(wrappers_pb2.DoubleValue(value=30), timeout=1)
    assert exc.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_domain_error_arrives_with_code_reason_and_field_violations(
    channel: grpc.Channel,
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        unary(channel, "Fail", empty_pb2.Empty)(wrappers_pb2.StringValue(value="t-1"), timeout=5)
    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(exc.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "THING_NOT_FOUND",
        "trust.egov",
        {"thing": "t-1"},
    )
    error = from_rpc_error(exc.value)
    assert error.reason == "THING_NOT_FOUND"
    assert [(v.field, v.description) for v in error.field_violations] == [
        ("value", "unknown thing")
    ]


def test_unexpected_exception_is_internal_without_details(
    channel: grpc.Channel, echo: ServiceProcess
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        unary(channel, "Crash", empty_pb2.Empty)(empty_pb2.Empty(), timeout=5)
    assert exc.value.code() is grpc.StatusCode.INTERNAL
    assert from_rpc_error(exc.value).reason == "INTERNAL"
    assert "hunter2" not in (exc.value.details() or "")
    log = echo.log_path.read_text()
    assert "1234567890121" not in log  # masked even inside the traceback
    assert "1-2345-xxxxx-xx-1" in log


def test_oversized_message_is_rejected_with_resource_exhausted(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        unary(channel, "Echo", wrappers_pb2.BytesValue)(
            wrappers_pb2.BytesValue(value=b"x" * (128 * 1024)), timeout=5
        )
    assert exc.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_streams_pass_through_the_interceptors(channel: grpc.Channel) -> None:
    upload = channel.stream_unary(
        f"/{SERVICE}/Upload",
        request_serializer=wrappers_pb2.BytesValue.SerializeToString,
        response_deserializer=wrappers_pb2.Int64Value.FromString,
    )
    chunks = (wrappers_pb2.BytesValue(value=b"y" * 10_000) for _ in range(20))
    assert upload(chunks, timeout=10).value == 200_000
    download = channel.unary_stream(
        f"/{SERVICE}/Download",
        request_serializer=wrappers_pb2.Int64Value.SerializeToString,
        response_deserializer=wrappers_pb2.BytesValue.FromString,
    )
    assert sum(len(c.value) for c in download(wrappers_pb2.Int64Value(value=50), timeout=10)) == (
        50 * 1024
    )


def test_a_channel_of_several_connections_gives_them_calls_in_turn(echo: ServiceProcess) -> None:
    with open_channel(echo.grpc_address, ServiceSettings(), connections=4) as spread:
        grpc.channel_ready_future(spread).result(timeout=10)
        peer = unary(spread, "Peer", wrappers_pb2.StringValue)
        peers = [peer(empty_pb2.Empty(), timeout=5).value for _ in range(12)]
        assert len(set(peers)) == 4  # four connections (four client ports)...
        assert peers[4:] == peers[:4] * 2  # ...taking the calls in turn
        _, call = peer.with_call(empty_pb2.Empty(), timeout=5)  # the rest of the interface
        assert call.code() is grpc.StatusCode.OK
        assert peer.future(empty_pb2.Empty(), timeout=5).result().value in peers
        test_streams_pass_through_the_interceptors(spread)
    with pytest.raises(ValueError):  # closing it closed every connection
        peer(empty_pb2.Empty(), timeout=5)
    with open_channel(echo.grpc_address, ServiceSettings(peer_connections=1)) as single:
        peer = unary(single, "Peer", wrappers_pb2.StringValue)
        assert len({peer(empty_pb2.Empty(), timeout=5).value for _ in range(4)}) == 1


def test_caller_identity_comes_from_a_verified_bearer_token(channel: grpc.Channel) -> None:
    who = unary(channel, "WhoAmI", wrappers_pb2.StringValue)
    assert who(empty_pb2.Empty(), timeout=5).value == "anonymous:"
    good = who(empty_pb2.Empty(), timeout=5, metadata=(("authorization", "Bearer good-token"),))
    assert good.value == "person:person-1"
    with pytest.raises(grpc.RpcError) as exc:
        who(empty_pb2.Empty(), timeout=5, metadata=(("authorization", "Bearer forged"),))
    assert exc.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert from_rpc_error(exc.value).reason == "TOKEN_INVALID"


def test_each_call_is_logged_as_one_json_line_with_trace_id(
    channel: grpc.Channel, echo: ServiceProcess
) -> None:
    with pytest.raises(grpc.RpcError):
        unary(channel, "Fail", empty_pb2.Empty)(wrappers_pb2.StringValue(value="t-2"), timeout=5)
    lines = [json.loads(line) for line in echo.log_path.read_text().splitlines() if "{" in line]
    calls = [ln for ln in lines if ln.get("rpc_method") == f"/{SERVICE}/Fail"]
    assert calls, "no request log line"
    last = calls[-1]
    assert last["rpc_code"] == "NOT_FOUND" and last["rpc_reason"] == "THING_NOT_FOUND"
    assert last["service"] == "echo" and len(last["trace_id"]) == 32
    assert "t-2" not in json.dumps(last)  # no request bodies in logs


def test_client_trace_continues_in_the_server_span(echo: ServiceProcess) -> None:
    exporter = InMemorySpanExporter()
    client = telemetry.setup("test-client", span_exporter=exporter, set_global=False)
    tracer = client.tracer_provider.get_tracer("test")
    with (
        open_channel(echo.grpc_address, ServiceSettings(), telemetry=client) as ch,
        tracer.start_as_current_span("client-operation"),
    ):
        unary(ch, "Echo", wrappers_pb2.BytesValue)(wrappers_pb2.BytesValue(value=b"hi"))
    client_spans = {s.name: s for s in exporter.get_finished_spans()}
    rpc_span = client_spans[f"/{SERVICE}/Echo"]
    assert rpc_span.parent is not None
    assert rpc_span.parent.span_id == client_spans["client-operation"].context.span_id
    server_spans = [
        s
        for s in telemetry.read_spans(echo.data_dir / "spans.jsonl")
        if s["name"] == f"/{SERVICE}/Echo" and s["kind"] == "SERVER"
    ]
    trace_id = format(rpc_span.context.trace_id, "032x")
    assert any(
        s["trace_id"] == trace_id
        and s["parent_span_id"] == format(rpc_span.context.span_id, "016x")
        for s in server_spans
    )
    client.shutdown()


def test_sigterm_lets_the_slow_call_finish_and_exits_zero(tmp_path: Path) -> None:
    with start_service(
        "echo_service", echo_env(), name="ECHO", data_dir=tmp_path, http=False
    ) as svc:
        with grpc.insecure_channel(svc.grpc_address) as ch:
            call = unary(ch, "Slow", empty_pb2.Empty).future(
                wrappers_pb2.DoubleValue(value=1.0), timeout=20
            )
            call.initial_metadata()  # the server is inside the call now
            svc.terminate()
            assert isinstance(call.result(), empty_pb2.Empty)
            assert svc.wait(timeout=20) == 0
        assert "draining" in svc.log_path.read_text()


def test_http_app_is_served_beside_grpc_and_stops_with_it(tmp_path: Path) -> None:
    with start_service("echo_service", echo_env(), name="ECHO", data_dir=tmp_path) as svc:
        response = httpx.get(f"{svc.http_url}/hello", timeout=5)
        assert response.json() == {"hello": "echo"}
        assert svc.stop() == 0


def test_start_service_reports_a_process_that_dies_with_its_log(tmp_path: Path) -> None:
    env = {**echo_env(), "EGOV_ECHO_ECHO_LIMIT": "lots"}
    with (
        pytest.raises(ServiceFailedToStart, match="EGOV_ECHO_ECHO_LIMIT"),
        start_service("echo_service", env, name="ECHO", data_dir=tmp_path, http=False),
    ):
        pytest.fail("a service with a malformed setting must not start")


def test_missing_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, **echo_env(), "EGOV_ECHO_DATA_DIR": str(tmp_path)}
    del env["EGOV_ECHO_REALM"]
    result = subprocess.run(
        [sys.executable, "-m", "echo_service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "EGOV_ECHO_REALM" in result.stderr and "required" in result.stderr


def test_malformed_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **echo_env(),
        "EGOV_ECHO_DATA_DIR": str(tmp_path),
        "EGOV_ECHO_ECHO_LIMIT": "lots",
    }
    result = subprocess.run(
        [sys.executable, "-m", "echo_service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "EGOV_ECHO_ECHO_LIMIT" in result.stderr


@pytest.mark.parametrize("variable", ["EGOV_ECHO_GRPC_LISTEN", "EGOV_ECHO_HTTP_LISTEN"])
def test_a_port_in_use_stops_start_up_with_one_line_naming_the_variable(
    tmp_path: Path, variable: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {
            **os.environ,
            **echo_env(),
            "EGOV_ECHO_DATA_DIR": str(tmp_path),
            "EGOV_ECHO_GRPC_LISTEN": "127.0.0.1:0",
            "EGOV_ECHO_HTTP_LISTEN": "127.0.0.1:0",
            variable: address,
        }
        result = subprocess.run(
            [sys.executable, "-m", "echo_service"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    (line,) = [json.loads(ln) for ln in result.stderr.splitlines() if "cannot listen" in ln]
    assert line["level"] == "ERROR"
    assert line["message"].startswith(f"cannot listen on {address} ({variable}): ")
    assert "in use" in line["message"]  # the operating system's reason


def test_without_an_exporter_the_callers_trace_id_reaches_logs_and_outgoing_calls(
    tmp_path: Path,
) -> None:
    # No trace file and no OTLP endpoint: the server records no spans, but its request log
    # lines carry the caller's trace id, and the calls it makes continue the same trace.
    exporter = InMemorySpanExporter()
    client = telemetry.setup("test-client", span_exporter=exporter, set_global=False)
    tracer = client.tracer_provider.get_tracer("test")
    env = echo_env(EGOV_ECHO_LOG_LEVEL="INFO")
    with start_service("echo_service", env, name="ECHO", data_dir=tmp_path, http=False) as svc:
        with (
            open_channel(svc.grpc_address, ServiceSettings(), telemetry=client) as ch,
            tracer.start_as_current_span("client-operation") as operation,
        ):
            unary(ch, "Relay", empty_pb2.Empty)(wrappers_pb2.DoubleValue(value=0), timeout=10)
        with grpc.insecure_channel(svc.grpc_address) as plain:
            unary(plain, "Echo", wrappers_pb2.BytesValue)(wrappers_pb2.BytesValue(), timeout=5)
        assert svc.stop() == 0
        lines = [json.loads(ln) for ln in svc.log_path.read_text().splitlines() if "{" in ln]
    client.shutdown()
    trace_id = format(operation.get_span_context().trace_id, "032x")
    by_method = {ln["rpc_method"]: ln for ln in lines if "rpc_method" in ln}
    assert by_method[f"/{SERVICE}/Relay"]["trace_id"] == trace_id
    assert by_method[f"/{SERVICE}/Slow"]["trace_id"] == trace_id  # the server's own call
    untraced = by_method[f"/{SERVICE}/Echo"]["trace_id"]
    assert len(untraced) == 32 and untraced != trace_id
    assert not (tmp_path / "spans.jsonl").exists()
