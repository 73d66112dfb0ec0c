"""serve() with EGOV_<SERVICE>_PROCESSES > 1: forked workers on one port, one supervisor."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from egov_common.channels import open_channel
from egov_common.settings import ServiceSettings
from egov_testing.processes import ServiceFailedToStart, ServiceProcess, start_service
from google.protobuf import empty_pb2, wrappers_pb2
from test_common_server import echo_env, unary

ATTEMPTS = 200  # new connections tried to reach every worker (the kernel hashes them)


def _channel(address: str) -> grpc.Channel:
    # A subchannel (TCP connection) of its own, not one shared by all channels of this process.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _channels_per_worker(address: str, workers: int) -> dict[int, grpc.Channel]:
    """One open channel to each worker, by the worker's pid."""
    found: dict[int, grpc.Channel] = {}
    for _ in range(ATTEMPTS):
        channel = _channel(address)
        pid = unary(channel, "Pid", wrappers_pb2.Int64Value)(empty_pb2.Empty(), timeout=5).value
        if pid in found:
            channel.close()
        else:
            found[pid] = channel
        if len(found) == workers:
            return found
    for channel in found.values():
        channel.close()
    pytest.fail(f"only {len(found)} of {workers} workers answered {ATTEMPTS} connections")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = echo_env(EGOV_ECHO_PROCESSES="2")
    with start_service("echo_service", env, name="ECHO", data_dir=tmp_path, http=False) as svc:
        yield svc


def test_a_service_channel_spreads_its_calls_over_the_workers(two_workers: ServiceProcess) -> None:
    # 16 connections all handed to one of two workers: once in 32,768 runs.
    with open_channel(two_workers.grpc_address, ServiceSettings(), connections=16) as channel:
        pid = unary(channel, "Pid", wrappers_pb2.Int64Value)
        answered = {pid(empty_pb2.Empty(), timeout=5).value for _ in range(32)}
    assert len(answered) == 2
    assert all(_parent_of(worker) == two_workers.pid for worker in answered)


def test_two_workers_answer_on_one_port(two_workers: ServiceProcess) -> None:
    channels = _channels_per_worker(two_workers.grpc_address, 2)
    try:
        assert all(_parent_of(pid) == two_workers.pid for pid in channels)
        for channel in channels.values():  # the standard wrapper runs in every worker
            with pytest.raises(grpc.RpcError) as exc:
                unary(channel, "Fail", empty_pb2.Empty)(
                    wrappers_pb2.StringValue(value="x"), timeout=5
                )
            assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        for channel in channels.values():
            channel.close()
    lines = [json.loads(ln) for ln in two_workers.log_path.read_text().splitlines() if "{" in ln]
    assert {ln.get("worker") for ln in lines if ln.get("message") == "serving"} == {0, 1}


def test_sigterm_drains_every_worker_and_exits_zero(two_workers: ServiceProcess) -> None:
    channels = _channels_per_worker(two_workers.grpc_address, 2)
    try:
        calls = [
            unary(channel, "Slow", empty_pb2.Empty).future(
                wrappers_pb2.DoubleValue(value=1.0), timeout=20
            )
            for channel in channels.values()
        ]
        for call in calls:
            call.initial_metadata()  # both workers are inside a call now
        two_workers.terminate()
        for call in calls:
            assert isinstance(call.result(), empty_pb2.Empty)
        assert two_workers.wait(timeout=30) == 0
    finally:
        for channel in channels.values():
            channel.close()
    assert not any(_alive(pid) for pid in channels)
    lines = [json.loads(ln) for ln in two_workers.log_path.read_text().splitlines() if "{" in ln]
    drained = {ln.get("worker") for ln in lines if "draining" in ln.get("message", "")}
    assert drained == {None, 0, 1}  # the supervisor and both workers


def test_a_worker_that_dies_stops_the_service_with_a_failure(
    two_workers: ServiceProcess,
) -> None:
    channels = _channels_per_worker(two_workers.grpc_address, 2)
    for channel in channels.values():
        channel.close()
    victim, survivor = list(channels)
    os.kill(victim, signal.SIGKILL)
    assert two_workers.wait(timeout=30) == 1  # not serving on at half capacity
    deadline = time.monotonic() + 10
    while _alive(survivor) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(survivor)
    log = two_workers.log_path.read_text()
    assert "exited on its own: killed by SIGKILL" in log


def test_http_is_served_by_the_workers_too(tmp_path: Path) -> None:
    env = echo_env(EGOV_ECHO_PROCESSES="2")
    with start_service("echo_service", env, name="ECHO", data_dir=tmp_path) as svc:
        for _ in range(10):
            with httpx.Client() as client:  # a new connection each time
                assert client.get(f"{svc.http_url}/hello", timeout=5).json() == {"hello": "echo"}
        assert svc.stop() == 0


def test_a_port_in_use_stops_start_up_before_any_worker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = echo_env(EGOV_ECHO_PROCESSES="2", EGOV_ECHO_GRPC_LISTEN=f"127.0.0.1:{port}")
        with (
            pytest.raises(ServiceFailedToStart, match="cannot listen on"),
            start_service("echo_service", env, name="ECHO", data_dir=tmp_path, http=False),
        ):
            pytest.fail("the port is taken")
