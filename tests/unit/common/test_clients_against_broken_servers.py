"""The client library against servers that break their contract: a clear EgovError, never an
endless loop or an assertion that ``python -O`` would skip."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov_clients.keys import KeysClient
from egov_clients.signing import SigningClient
from egov_common.errors import Internal


class _RepeatingKeys(keys_pb2_grpc.KeysServiceServicer):  # type: ignore[misc]
    """Hands out the same next-page token for ever."""

    def __init__(self) -> None:
        self.pages = 0

    def ListCredentials(self, request: Any, context: Any) -> keys_pb2.ListCredentialsResponse:
        self.pages += 1
        return keys_pb2.ListCredentialsResponse(next_page_token="again")


class _ResultlessSigning(signing_pb2_grpc.SigningServiceServicer):  # type: ignore[misc]
    """Streams PDF bytes back without the result message that must come first."""

    def SignDocument(
        self, request_iterator: Iterator[Any], context: Any
    ) -> Iterator[signing_pb2.SignDocumentResponse]:
        for _ in request_iterator:
            pass
        yield signing_pb2.SignDocumentResponse(chunk=b"%PDF-1.7")


@pytest.fixture
def server() -> Iterator[tuple[str, _RepeatingKeys]]:
    keys = _RepeatingKeys()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    keys_pb2_grpc.add_KeysServiceServicer_to_server(keys, grpc_server)
    signing_pb2_grpc.add_SigningServiceServicer_to_server(_ResultlessSigning(), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        yield f"127.0.0.1:{port}", keys
    finally:
        grpc_server.stop(None)


def test_a_repeated_page_token_ends_the_listing_with_an_error(
    server: tuple[str, _RepeatingKeys],
) -> None:
    address, keys = server
    with grpc.insecure_channel(address) as channel, pytest.raises(Internal) as info:
        KeysClient(channel, timeout=5).list_credentials("TH-PID:1101700230708")
    assert info.value.reason == "PAGE_TOKEN_REPEATED"
    assert keys.pages == 2


def test_a_signed_document_without_its_result_is_an_error(
    server: tuple[str, _RepeatingKeys],
) -> None:
    address, _ = server
    client = SigningClient(address)
    try:
        with pytest.raises(Internal) as info:
            client.sign_document(b"%PDF-1.7\n%%EOF\n", credential_id="cred_1")
    finally:
        client.close()
    assert info.value.reason == "RESULT_MISSING"
