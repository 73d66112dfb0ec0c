"""egov_testing.load: every share reaches the server from its own connection, failures surface."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from egov_testing.load import LoadFailed, run_clients

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
        self.lock = threading.Lock()

    def add(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.items.append(int(request))
            self.peers.add(context.peer())
        return b""


@pytest.fixture
def counter() -> Iterator[tuple[_Counter, str]]:
    counter = _Counter()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    handler = grpc.unary_unary_rpc_method_handler(
        counter.add, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("egov.test.v1.Count", {"Add": handler})]
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
