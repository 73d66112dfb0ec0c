"""Outgoing calls made while serving: within the incoming deadline, and cancelled with it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import grpc
import pytest
from egov_common.channels import DeadlineInterceptor, open_channel
from egov_common.deadlines import deadline_scope
from egov_common.server import BuiltServer, GrpcService, build_server
from egov_common.settings import ServiceSettings
from google.protobuf import empty_pb2, wrappers_pb2

WAIT = 10.0  # the bound on every wait of these tests (seconds)
PEER = "egov.test.v1.Peer"
RELAY = "egov.test.v1.Relay"


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any = None
    credentials: Any = None
    wait_for_ready: Any = None
    compression: Any = None


def _timeout(timeout: float | None) -> float | None:
    details = DeadlineInterceptor(30.0)._details(_Details("/x/Y", timeout))
    return details.timeout  # type: ignore[no-any-return]


def test_an_explicit_timeout_is_cut_to_what_is_left_of_the_incoming_deadline() -> None:
    with deadline_scope(2.0):
        assert (cut := _timeout(10.0)) is not None and cut <= 2.0
        assert _timeout(1.0) == 1.0  # a shorter one stays
        assert (inherited := _timeout(None)) is not None and 0 < inherited <= 2.0
    with deadline_scope(-1.0):
        assert _timeout(10.0) == 0.0  # nothing left: the call fails at once, on our side


def test_outside_a_call_a_timeout_is_its_own_or_the_default() -> None:
    assert _timeout(10.0) == 10.0
    assert _timeout(None) == 30.0


# -- cancellation ------------------------------------------------------------------------------


class _Peer:
    """The downstream service: its Slow call works until its caller is gone (or released)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.caller_gone = threading.Event()
        self.release = threading.Event()

    def slow(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        self.started.set()
        deadline = time.monotonic() + WAIT * 3
        while time.monotonic() < deadline and not self.release.is_set():
            if not context.is_active():
                self.caller_gone.set()
                break
            time.sleep(0.01)
        return empty_pb2.Empty()

    def slow_stream(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> Any:
        self.slow(request, context)
        yield empty_pb2.Empty()

    def register(self, server: grpc.Server) -> None:
        empty = empty_pb2.Empty
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    PEER,
                    {
                        "Slow": grpc.unary_unary_rpc_method_handler(
                            self.slow, empty.FromString, empty.SerializeToString
                        ),
                        "SlowStream": grpc.unary_stream_rpc_method_handler(
                            self.slow_stream, empty.FromString, empty.SerializeToString
                        ),
                    },
                ),
            )
        )


def _serve(register: Callable[[grpc.Server], None], name: str, servers: list[BuiltServer]) -> str:
    settings = ServiceSettings(service_name=name, grpc_listen="127.0.0.1:0")
    built = build_server(settings, [GrpcService(PEER if name == "peer" else RELAY, register)])
    built.start()
    servers.append(built)
    return built.address


@pytest.fixture
def servers() -> Iterator[list[BuiltServer]]:
    started: list[BuiltServer] = []
    yield started
    for built in started:
        built.drain(grace=1)


def _relay(peer_address: str, how: str, kept: list[Any]) -> Callable[..., object]:
    settings = ServiceSettings(service_name="relay", default_deadline=WAIT * 3)
    channel = open_channel(peer_address, settings, connections=1)
    empty = empty_pb2.Empty
    slow = channel.unary_unary(f"/{PEER}/Slow", empty.SerializeToString, empty.FromString)
    stream = channel.unary_stream(f"/{PEER}/SlowStream", empty.SerializeToString, empty.FromString)
    kept.append(channel)

    def relay(request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        if how == "blocking":
            slow(empty())
        elif how == "future":
            slow.future(empty()).result()
        elif how == "stream":
            list(stream(empty()))
        elif how == "fire and forget":
            kept.append(slow.future(empty()))
        return empty()

    return relay


def _register_relay(relay: Callable[..., object]) -> Callable[[grpc.Server], None]:
    def register(server: grpc.Server) -> None:
        empty = empty_pb2.Empty
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    RELAY,
                    {
                        "Relay": grpc.unary_unary_rpc_method_handler(
                            relay, empty.FromString, empty.SerializeToString
                        )
                    },
                ),
            )
        )

    return register


@pytest.mark.parametrize("how", ["blocking", "future", "stream"])
def test_a_call_cancelled_by_its_client_cancels_the_calls_made_to_serve_it(
    servers: list[BuiltServer], caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO)
    peer = _Peer()
    kept: list[Any] = []
    peer_address = _serve(peer.register, "peer", servers)
    relay_address = _serve(_register_relay(_relay(peer_address, how, kept)), "relay", servers)
    try:
        with grpc.insecure_channel(relay_address) as channel:
            call = channel.unary_unary(
                f"/{RELAY}/Relay",
                empty_pb2.Empty.SerializeToString,
                empty_pb2.Empty.FromString,
            ).future(empty_pb2.Empty())  # no deadline: only the cancellation ends it
            assert peer.started.wait(WAIT)
            call.cancel()
            # the peer hears of it (not after its own 30 s default deadline)
            assert peer.caller_gone.wait(WAIT)
    finally:
        peer.release.set()
        kept[0].close()

    def relay_logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "rpc_method", "") == f"/{RELAY}/Relay"]

    deadline = time.monotonic() + WAIT
    while not relay_logged() and time.monotonic() < deadline:
        time.sleep(0.01)
    (line,) = relay_logged()
    assert line.rpc_code == "CANCELLED"  # the client's doing, not a failed peer
    assert not [r for r in caplog.records if "call to a peer failed" in r.getMessage()]


def test_a_call_left_running_by_a_servicer_that_returned_is_not_cancelled(
    servers: list[BuiltServer],
) -> None:
    peer = _Peer()
    kept: list[Any] = []
    peer_address = _serve(peer.register, "peer", servers)
    relay_address = _serve(
        _register_relay(_relay(peer_address, "fire and forget", kept)), "relay", servers
    )
    try:
        with grpc.insecure_channel(relay_address) as channel:
            channel.unary_unary(
                f"/{RELAY}/Relay", empty_pb2.Empty.SerializeToString, empty_pb2.Empty.FromString
            )(empty_pb2.Empty(), timeout=WAIT)
        assert peer.started.wait(WAIT)
        peer.release.set()
        assert kept[1].result(timeout=WAIT) == empty_pb2.Empty()
        assert not peer.caller_gone.is_set()
    finally:
        peer.release.set()
        kept[0].close()


def test_a_blocking_call_made_while_serving_answers_as_a_blocking_call_does(
    servers: list[BuiltServer],
) -> None:
    # made as a future under the hood: its errors are still grpc.RpcError with their code
    peer = _Peer()
    peer_address = _serve(peer.register, "peer", servers)
    settings = ServiceSettings(service_name="relay")
    seen: list[object] = []

    def relay(request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        with open_channel(peer_address, settings, connections=1) as channel:
            missing = channel.unary_unary(
                "/egov.test.v1.Peer/Missing",
                empty_pb2.Empty.SerializeToString,
                empty_pb2.Empty.FromString,
            )
            try:
                missing(empty_pb2.Empty())
            except grpc.RpcError as exc:
                seen.append(exc.code())
            _response, call = channel.unary_unary(
                f"/{PEER}/Slow", empty_pb2.Empty.SerializeToString, empty_pb2.Empty.FromString
            ).with_call(empty_pb2.Empty())
            seen.append(call.code())
        return wrappers_pb2.StringValue(value="ok")

    peer.release.set()
    relay_address = _serve(_register_relay(relay), "relay", servers)
    with grpc.insecure_channel(relay_address) as channel:
        channel.unary_unary(
            f"/{RELAY}/Relay",
            empty_pb2.Empty.SerializeToString,
            wrappers_pb2.StringValue.FromString,
        )(empty_pb2.Empty(), timeout=WAIT)
    assert seen == [grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.OK]
