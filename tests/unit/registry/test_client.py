"""The registry client retries only what is safe, with the same idempotency key."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient, deciding_entry
from egov_common.deadlines import deadline_scope
from egov_common.errors import DeadlineExceeded, InvalidArgument, Unavailable

AGENCY = "TH-JUR:0994000000014"


class _Failure(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class _FlakyStub:
    """Fails the first ``failures`` calls with ``code``, then answers; records every request."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.failures, self.code = failures, code
        self.requests: list[pb.RegisterDocumentRequest] = []
        self.timeouts: list[float] = []

    def RegisterDocument(
        self, request: pb.RegisterDocumentRequest, *, timeout: float, metadata: Any
    ) -> pb.RegisterDocumentResponse:
        self.requests.append(request)
        self.timeouts.append(timeout)
        if len(self.requests) <= self.failures:
            raise _Failure(self.code)
        return pb.RegisterDocumentResponse(document=pb.Document(document_id="DOC-1"))


def _client(stub: _FlakyStub, attempts: int = 4) -> RegistryClient:
    client = RegistryClient(
        "127.0.0.1:1", deadline=3.0, max_attempts=attempts, sleep=lambda _: None
    )
    client._stub = stub  # type: ignore[assignment]
    return client


def test_unavailable_is_retried_with_the_same_idempotency_key() -> None:
    stub = _FlakyStub(2, grpc.StatusCode.UNAVAILABLE)
    document = _client(stub).register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert document.document_id == "DOC-1"
    assert len(stub.requests) == 3
    assert len({r.idempotency_key for r in stub.requests}) == 1
    assert stub.timeouts == [3.0, 3.0, 3.0]


def test_retries_stop_after_the_last_attempt() -> None:
    stub = _FlakyStub(10, grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(Unavailable):
        _client(stub, attempts=3).register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert len(stub.requests) == 3


def test_a_refusal_is_not_retried() -> None:
    stub = _FlakyStub(10, grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(InvalidArgument):
        _client(stub).register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert len(stub.requests) == 1


_R, _S = pb.DOCUMENT_STATUS_REGISTERED, pb.DOCUMENT_STATUS_SUPERSEDED
_V = pb.DOCUMENT_STATUS_REVOKED


@pytest.mark.parametrize(
    ("statuses", "deciding"),
    [
        ((_V, _R), 0),  # an older revocation is not hidden by another issuer's newer entry
        ((_R, _V), 1),
        ((_S, _R), 0),  # superseded speaks before registered
        ((_R, _S), 1),
        ((_R, _R), 1),  # among equals the newest
    ],
)
def test_the_most_severe_entry_for_a_digest_decides(
    statuses: tuple[int, ...], deciding: int
) -> None:
    # LookupByHash as the registry answers it: one entry per issuer, oldest first.
    documents = [pb.Document(document_id=f"DOC-{n}", status=s) for n, s in enumerate(statuses)]
    assert deciding_entry(documents).document_id == f"DOC-{deciding}"


def _sleeps(client: RegistryClient) -> list[float]:
    slept: list[float] = []
    client._sleep = slept.append  # type: ignore[method-assign]
    return slept


def test_retries_stop_when_the_callers_deadline_would_pass_before_the_next_attempt() -> None:
    # serving a call with 1 s left, the client must not back off for seconds and try again
    # for a caller that has given up (signing calls the registry while serving)
    stub = _FlakyStub(10, grpc.StatusCode.UNAVAILABLE)
    client = RegistryClient("127.0.0.1:1", deadline=10.0, max_attempts=6, backoff=5.0)
    client._stub = stub  # type: ignore[assignment]
    slept = _sleeps(client)
    with deadline_scope(1.0), pytest.raises(Unavailable):
        client.register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert len(stub.requests) == 1
    assert slept == []


def test_each_attempt_gets_at_most_what_is_left_of_the_callers_deadline() -> None:
    stub = _FlakyStub(1, grpc.StatusCode.UNAVAILABLE)
    client = _client(stub)  # its own deadline: 3 s a call
    with deadline_scope(1.0):
        client.register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert len(stub.timeouts) == 2
    assert all(0 < timeout <= 1.0 for timeout in stub.timeouts)


def test_a_call_with_no_time_left_is_not_sent() -> None:
    stub = _FlakyStub(0, grpc.StatusCode.UNAVAILABLE)
    with deadline_scope(-1.0), pytest.raises(DeadlineExceeded):
        _client(stub).register(sha256=b"\x01" * 32, issuer=AGENCY, document_type="p")
    assert stub.requests == []
