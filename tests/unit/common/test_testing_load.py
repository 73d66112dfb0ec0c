"""egov_testing.load: every share reaches the server from its own connection, failures surface;
h2load runs count only calls that returned the expected message; grpc_replay sends each request
once and fails a run with a failed call."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from egov_testing.load import (
    LoadFailed,
    h2load_unary,
    replay_program,
    replay_unary,
    run_clients,
)

METHOD = "/egov.test.v1.Count/Add"


def _identity(value: bytes) -> bytes:
    return value


def _send_each(channel: grpc.Channel, share: list[Any]) -> None:
    add = channel.unary_unary(METHOD, request_serializer=_identity, response_deserializer=_identity)
    for item in share:
        add(str(item).encode(), timeout=30)


def _fail(channel: grpc.Channel, share: list[Any]) -> None:
    if 13 in share:
        raise ValueError("client with item 13 gives up")
    _send_each(channel, share)


class _Counter:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.peers: set[str] = set()
        self.metadata: list[dict[str, str]] = []
        self.in_flight: dict[str, int] = {}  # calls running now, by connection
        self.most_in_flight = 0  # on one connection at once
        self.lock = threading.Lock()

    def add(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        peer = context.peer()
        with self.lock:
            self.items.append(int(request))
            self.peers.add(peer)
            self.metadata.append({m.key: str(m.value) for m in context.invocation_metadata()})
            self.in_flight[peer] = self.in_flight.get(peer, 0) + 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight[peer])
        time.sleep(0.0005)  # long enough for a second call on the connection to overlap
        with self.lock:
            self.in_flight[peer] -= 1
        return b""

    def refuse(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused")


@pytest.fixture
def counter() -> Iterator[tuple[_Counter, str]]:
    counter = _Counter()
    server = grpc.server(futures.ThreadPoolExecutor(16))
    handler = grpc.unary_unary_rpc_method_handler(
        counter.add, request_deserializer=_identity, response_serializer=_identity
    )
    refuse = grpc.unary_unary_rpc_method_handler(
        counter.refuse, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "egov.test.v1.Count", {"Add": handler, "Refuse": refuse}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield counter, f"127.0.0.1:{port}"
    server.stop(None)


def test_every_item_is_sent_once_by_clients_of_their_own(counter: tuple[_Counter, str]) -> None:
    received, address = counter
    items = list(range(60))
    shares = [items[c::6] for c in range(6)]
    seconds = run_clients(_send_each, address, shares, processes=2)
    assert seconds > 0
    assert sorted(received.items) == items
    assert len(received.peers) == 6  # one connection per client


def test_a_failing_client_fails_the_run_with_its_traceback(
    counter: tuple[_Counter, str],
) -> None:
    _, address = counter
    with pytest.raises(LoadFailed) as failed:
        run_clients(_fail, address, [[1, 2], [13], [3]], processes=2)
    assert "client with item 13 gives up" in str(failed.value)


def test_a_server_that_is_not_there_fails_the_run() -> None:
    with pytest.raises(LoadFailed):
        run_clients(_send_each, "127.0.0.1:1", [[1]], processes=1, connect_timeout=2)


needs_h2load = pytest.mark.skipif(
    shutil.which("h2load") is None,
    reason="h2load is not installed (Debian nghttp2-client; .ci/install-system-packages)",
)


@needs_h2load
def test_h2load_sends_every_call_and_times_the_run(counter: tuple[_Counter, str]) -> None:
    received, address = counter
    run = h2load_unary(address, METHOD, b"7", b"", calls=300, connections=3)
    assert run.calls == 300
    assert run.seconds > 0 and run.per_second > 0 and run.mean_latency_ms > 0
    assert received.items == [7] * 300
    assert len(received.peers) == 3


@needs_h2load
def test_h2load_fails_a_run_whose_calls_failed_in_grpc(counter: tuple[_Counter, str]) -> None:
    # Every call is HTTP 200 (h2load's "succeeded"); only the missing messages tell.
    _, address = counter
    with pytest.raises(LoadFailed, match="expected 50 calls"):
        h2load_unary(address, "/egov.test.v1.Count/Refuse", b"1", b"", calls=50, connections=2)


@needs_h2load
def test_h2load_fails_a_run_with_other_answers_than_expected(
    counter: tuple[_Counter, str],
) -> None:
    _, address = counter
    with pytest.raises(LoadFailed, match="expected 50 calls"):
        h2load_unary(address, METHOD, b"1", b"an answer", calls=50, connections=2)


@pytest.fixture(scope="module")
def replay() -> None:
    """grpc_replay built, or the test skipped where it cannot be (a failed build fails it)."""
    try:
        replay_program()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.usefixtures("replay")
def test_replay_sends_each_request_once_with_its_metadata(counter: tuple[_Counter, str]) -> None:
    received, address = counter
    requests = [str(i).encode() for i in range(500)]
    run = replay_unary(
        address, METHOD, requests, connections=4, metadata={"authorization": "Bearer t-1"}
    )
    assert run.calls == 500
    assert run.seconds > 0 and run.per_second > 0 and run.mean_latency_ms > 0
    assert run.client_cpu_seconds is not None and run.client_cpu_seconds > 0
    assert sorted(received.items) == list(range(500))
    assert len(received.peers) == 4
    assert received.most_in_flight == 1  # one call at a time on each connection
    assert all(m.get("authorization") == "Bearer t-1" for m in received.metadata)


@pytest.mark.usefixtures("replay")
def test_replay_fails_a_run_whose_calls_failed(counter: tuple[_Counter, str]) -> None:
    _, address = counter
    first = r"50 of 50 calls failed \(of 50 to send\), the first: call \d+: 9 refused"  # 9: code
    with pytest.raises(LoadFailed, match=first):
        replay_unary(address, "/egov.test.v1.Count/Refuse", [b"1"] * 50, connections=2)


@pytest.mark.usefixtures("replay")
def test_replay_refuses_a_requests_file_cut_short(
    counter: tuple[_Counter, str], tmp_path: Path
) -> None:
    received, address = counter
    frames = tmp_path / "requests"
    frames.write_bytes(struct.pack(">I", 1) + b"1" + struct.pack(">I", 5) + b"12")
    done = subprocess.run(
        [str(replay_program()), address, METHOD, str(frames), "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "frame 1 of" in done.stderr and "cut short" in done.stderr
    assert received.items == []  # nothing sent from a file it could not read whole


def test_replay_refuses_metadata_names_grpc_would_abort_on() -> None:
    with pytest.raises(ValueError, match="lower case"):
        replay_unary("127.0.0.1:1", METHOD, [b"1"], connections=1, metadata={"Authorization": "x"})


@pytest.mark.usefixtures("replay")
def test_replay_removes_other_builds_left_unused_for_a_week(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = replay_program()
    stale, recent = built.with_name("grpc_replay-0stale"), built.with_name("grpc_replay-0recent")
    for other in (stale, recent):
        other.write_bytes(b"another checkout's build")
    week_and_a_day = time.time() - 8 * 24 * 3600
    os.utime(stale, (week_and_a_day, week_and_a_day))
    monkeypatch.setattr("egov_testing.load._replay_built", None)  # looked for again
    try:
        assert replay_program() == built and built.exists()
        assert not stale.exists()
        assert recent.exists()  # another checkout may still run it
    finally:
        stale.unlink(missing_ok=True)
        recent.unlink(missing_ok=True)
