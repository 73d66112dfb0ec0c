"""build_server under pressure: busy workers, idle or cut-short client streams, calls refused.

Each test starts the server in-process with small limits; every wait is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from egov.registry.v1 import registry_pb2, registry_pb2_grpc
from egov_common import telemetry
from egov_common.server import BuiltServer, GrpcService, build_server
from egov_common.settings import ServiceSettings
from egov_common.status import from_rpc_error
from google.protobuf import empty_pb2, wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICE = "egov.test.v1.Pressure"
WAIT = 10.0  # the bound on every wait of these tests (seconds); none should come near it


@dataclass
class _Probe:
    """What the servicer saw, and the gate the test holds its calls at."""

    gate: threading.Event = field(default_factory=threading.Event)
    holding: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    uploads: list[tuple[str, int]] = field(default_factory=list)
    uploaded: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    streaming: threading.Event = field(default_factory=threading.Event)

    def hold(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        self.holding.release()
        self.gate.wait(3 * WAIT)  # longer than any call of the tests waits
        return empty_pb2.Empty()

    def who(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        return wrappers_pb2.StringValue(value="here")

    def upload(
        self, requests: Iterator[wrappers_pb2.BytesValue], context: grpc.ServicerContext
    ) -> object:
        size = 0
        try:
            for request in requests:
                size += len(request.value)
                self.streaming.set()
        except BaseException as exc:
            self.uploads.append((type(exc).__name__, size))
            self.uploaded.release()
            raise
        self.uploads.append(("complete", size))
        self.uploaded.release()
        return wrappers_pb2.Int64Value(value=size)

    def register(self, server: grpc.Server) -> None:
        def unary(fn: Callable[..., object]) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )

        upload = grpc.stream_unary_rpc_method_handler(
            self.upload,
            request_deserializer=wrappers_pb2.BytesValue.FromString,
            response_serializer=wrappers_pb2.Int64Value.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    SERVICE, {"Hold": unary(self.hold), "Who": unary(self.who), "Upload": upload}
                ),
            )
        )


@pytest.fixture
def probe() -> Iterator[_Probe]:
    probe = _Probe()
    yield probe
    probe.gate.set()  # never leave a held call behind


def _start(probe: _Probe, *, tracing: bool = False, **limits: Any) -> BuiltServer:
    settings = ServiceSettings(service_name="pressure", grpc_listen="127.0.0.1:0", **limits)
    spans = (
        telemetry.setup("pressure", span_exporter=InMemorySpanExporter(), set_global=False)
        if tracing
        else None
    )
    built = build_server(settings, [GrpcService(SERVICE, probe.register)], telemetry=spans)
    built.start()
    built.set_serving()
    return built


@pytest.fixture
def servers() -> Iterator[list[BuiltServer]]:
    started: list[BuiltServer] = []
    yield started
    for built in started:
        built.drain(grace=1)


def _call(channel: grpc.Channel, name: str, response: Any = empty_pb2.Empty) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/{name}",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=response.FromString,
    )


def _upload(channel: grpc.Channel) -> Any:
    return channel.stream_unary(
        f"/{SERVICE}/Upload",
        request_serializer=wrappers_pb2.BytesValue.SerializeToString,
        response_deserializer=wrappers_pb2.Int64Value.FromString,
    )


def _health(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=WAIT
    )
    return int(reply.status)


def _hold_every_worker(channel: grpc.Channel, probe: _Probe, count: int) -> list[Any]:
    held = [
        _call(channel, "Hold").future(empty_pb2.Empty(), timeout=WAIT * 4) for _ in range(count)
    ]
    for _ in range(count):
        assert probe.holding.acquire(timeout=WAIT)
    return held


def _request_log(caplog: pytest.LogCaptureFixture, method: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "rpc_method", "") == f"/{SERVICE}/{method}"]


def _wait_for(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.01)


# -- health and admission ----------------------------------------------------------------------


@pytest.mark.parametrize("tracing", [False, True], ids=["plain", "traced"])
def test_health_answers_while_every_worker_is_busy(
    probe: _Probe, servers: list[BuiltServer], tracing: bool
) -> None:
    built = _start(probe, tracing=tracing, max_workers=2, max_threads=2)
    servers.append(built)
    with grpc.insecure_channel(built.address) as channel:
        held = _hold_every_worker(channel, probe, 2)
        # a busy server is not a broken one: its probe must not fail (and get it restarted)
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        probe.gate.set()
        for call in held:
            call.result(timeout=WAIT)


def test_health_watch_does_not_take_a_worker(probe: _Probe, servers: list[BuiltServer]) -> None:
    built = _start(probe, max_workers=1, max_threads=1)
    servers.append(built)
    with grpc.insecure_channel(built.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=3 * WAIT
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        # the watch stays open; the one worker is still free for a call
        assert (
            _call(channel, "Who", wrappers_pb2.StringValue)(empty_pb2.Empty(), timeout=WAIT).value
            == "here"
        )
        watch.cancel()


@pytest.mark.parametrize("tracing", [False, True], ids=["plain", "traced"])
def test_a_call_beyond_the_queue_bound_is_refused_at_once_as_server_busy(
    probe: _Probe, servers: list[BuiltServer], caplog: pytest.LogCaptureFixture, tracing: bool
) -> None:
    caplog.set_level(logging.INFO, "egov.rpc")
    built = _start(probe, tracing=tracing, max_workers=1, max_threads=1, max_queued_calls=1)
    servers.append(built)
    assert built.executor is not None
    with grpc.insecure_channel(built.address) as channel:
        held = _hold_every_worker(channel, probe, 1)
        queued = _call(channel, "Who", wrappers_pb2.StringValue).future(
            empty_pb2.Empty(), timeout=WAIT
        )
        _wait_for(lambda: built.executor is not None and built.executor.queued_calls == 1)
        with pytest.raises(grpc.RpcError) as refused:
            _call(channel, "Who", wrappers_pb2.StringValue)(empty_pb2.Empty(), timeout=WAIT)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert from_rpc_error(refused.value).reason == "SERVER_BUSY"
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING  # never refused
        probe.gate.set()
        held[0].result(timeout=WAIT)
        assert queued.result(timeout=WAIT).value == "here"  # the queued call was served
    (line,) = [r for r in _request_log(caplog, "Who") if r.rpc_code == "RESOURCE_EXHAUSTED"]
    assert line.rpc_reason == "SERVER_BUSY"


# -- client streams ------------------------------------------------------------------------------


def _stalling(stop: threading.Event, first: int = 2) -> Iterator[wrappers_pb2.BytesValue]:
    """A client stream that sends ``first`` messages, then nothing until ``stop``."""
    for _ in range(first):
        yield wrappers_pb2.BytesValue(value=b"x" * 100)
    stop.wait(3 * WAIT)  # longer than any call of the tests waits


def test_an_idle_client_stream_is_ended_and_its_worker_freed(
    probe: _Probe, servers: list[BuiltServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "egov.rpc")
    built = _start(probe, max_workers=1, max_threads=1, stream_idle_timeout=0.2)
    servers.append(built)
    stop = threading.Event()
    try:
        with grpc.insecure_channel(built.address) as channel:
            idle = _upload(channel).future(_stalling(stop))  # no deadline: only idleness ends it
            assert probe.uploaded.acquire(timeout=WAIT)
            error = idle.exception(timeout=WAIT)
            assert isinstance(error, grpc.RpcError)
            assert error.code() is grpc.StatusCode.CANCELLED
            # the one worker is free again
            assert (
                _call(channel, "Who", wrappers_pb2.StringValue)(
                    empty_pb2.Empty(), timeout=WAIT
                ).value
                == "here"
            )
    finally:
        stop.set()
    assert probe.uploads[0][0] != "complete"  # the servicer never took it for a whole upload
    _wait_for(lambda: bool(_request_log(caplog, "Upload")))
    (line,) = _request_log(caplog, "Upload")
    assert (line.rpc_code, line.rpc_reason) == ("CANCELLED", "CLIENT_STREAM_IDLE")


def test_a_steady_client_stream_slower_in_all_than_the_idle_timeout_is_served(
    probe: _Probe, servers: list[BuiltServer]
) -> None:
    built = _start(probe, stream_idle_timeout=0.5)
    servers.append(built)

    def steady() -> Iterator[wrappers_pb2.BytesValue]:
        for _ in range(8):  # ~0.8 s in all, never 0.5 s without a message
            time.sleep(0.1)
            yield wrappers_pb2.BytesValue(value=b"y" * 10)

    with grpc.insecure_channel(built.address) as channel:
        assert _upload(channel)(steady(), timeout=WAIT).value == 80


def test_clients_slow_to_stream_hold_threads_not_the_workers(
    probe: _Probe, servers: list[BuiltServer]
) -> None:
    built = _start(probe, max_workers=2, max_threads=4)
    servers.append(built)
    stop = threading.Event()
    try:
        with grpc.insecure_channel(built.address) as channel:
            slow = [_upload(channel).future(_stalling(stop)) for _ in range(2)]
            _wait_for(lambda: probe.streaming.is_set())
            # both workers' calls wait for their clients: a third call runs meanwhile
            assert (
                _call(channel, "Who", wrappers_pb2.StringValue)(
                    empty_pb2.Empty(), timeout=WAIT
                ).value
                == "here"
            )
            stop.set()
            for call in slow:
                assert call.result(timeout=WAIT).value == 200
    finally:
        stop.set()


@pytest.mark.parametrize("ending", ["cancel", "deadline"])
def test_a_client_stream_cut_short_is_logged_as_the_clients_doing_not_a_peer_failure(
    probe: _Probe, servers: list[BuiltServer], caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    caplog.set_level(logging.INFO, "egov.rpc")
    built = _start(probe)
    servers.append(built)
    stop = threading.Event()
    try:
        with grpc.insecure_channel(built.address) as channel:
            if ending == "cancel":
                call = _upload(channel).future(_stalling(stop))
                assert probe.streaming.wait(WAIT)
                call.cancel()
            else:
                call = _upload(channel).future(_stalling(stop), timeout=0.3)
                assert isinstance(call.exception(timeout=WAIT), grpc.RpcError)
            assert probe.uploaded.acquire(timeout=WAIT)
    finally:
        stop.set()
    expected = "CANCELLED" if ending == "cancel" else "DEADLINE_EXCEEDED"
    _wait_for(lambda: bool(_request_log(caplog, "Upload")))
    (line,) = _request_log(caplog, "Upload")
    assert line.rpc_code == expected
    assert line.rpc_reason != "UPSTREAM_FAILED"
    assert not [r for r in caplog.records if "call to a peer failed" in r.getMessage()]
    assert probe.uploads[0][0] != "complete"


def test_a_client_stream_cut_short_never_looks_complete_to_the_servicer(
    probe: _Probe, servers: list[BuiltServer]
) -> None:
    # grpc/grpc#33038: a cancelled stream's end may reach the request iterator before the
    # cancellation does, and a plain `for` loop then takes half an upload for the whole.
    built = _start(probe)
    servers.append(built)
    stop = threading.Event()
    trials = 30
    try:
        with grpc.insecure_channel(built.address) as channel:
            upload = _upload(channel)
            for _ in range(trials):
                call = upload.future(_stalling(stop, first=3))
                time.sleep(0.02)
                call.cancel()
                assert probe.uploaded.acquire(timeout=WAIT)
    finally:
        stop.set()
    assert len(probe.uploads) == trials
    assert not [outcome for outcome in probe.uploads if outcome[0] == "complete"]


# -- methods left unimplemented ----------------------------------------------------------------


def test_an_rpc_left_to_the_generated_base_answers_unimplemented_without_an_error_log(
    servers: list[BuiltServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    class Partial(registry_pb2_grpc.RegistryServiceServicer):  # type: ignore[misc]
        pass  # an RPC added to the .proto before its implementation

    name = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
    settings = ServiceSettings(service_name="partial", grpc_listen="127.0.0.1:0")
    built = build_server(
        settings,
        [
            GrpcService(
                name,
                lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                    Partial(), server
                ),
            )
        ],
    )
    built.start()
    servers.append(built)
    with grpc.insecure_channel(built.address) as channel, pytest.raises(grpc.RpcError) as exc:
        registry_pb2_grpc.RegistryServiceStub(channel).GetDocument(
            registry_pb2.GetDocumentRequest(document_id="x"), timeout=WAIT
        )
    assert exc.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert from_rpc_error(exc.value).reason == "METHOD_NOT_IMPLEMENTED"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
