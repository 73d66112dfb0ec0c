"""Trust-service adapters over HTTP: the TSA client keeps its connection, revocation fetching
stays inside the allow-list, and signing's cache reuses OCSP/CRL answers only within their
validity while verification's backend always asks again."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
import requests
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from egov.registry.v1 import registry_pb2, registry_pb2_grpc
from egov_common.deadlines import deadline_scope
from egov_common.errors import Code, EgovError
from egov_signing.adapters import registry as registry_adapter
from egov_signing.adapters.registry import GrpcRegistryPort, RegistryStatus
from egov_signing.adapters.revocation import AllowListFetcherBackend, RevocationCache
from egov_signing.adapters.tsa import HttpTimeStamper
from egov_signing.domain.ports import Party, RegistrationSpec
from egov_testing.fake_registry import RegistryWithEntries
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.authority import AuthorityWithCert
from signing_testkit import SigningPki

OCSP_VALIDITY = dt.timedelta(hours=1)


@dataclass
class TrustServices:
    """A local HTTP server playing keys' TSA, OCSP responder and CRL distribution point."""

    pki: SigningPki
    url: str = ""
    requests: Counter[str] = field(default_factory=Counter)
    connections: set[int] = field(default_factory=set)
    tsa_status: int = 200

    def ocsp_answer(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + OCSP_VALIDITY,
            revocation_time=None,
            revocation_reason=None,
        )
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.pki.root).sign(
            self.pki.root_key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def services(pki: SigningPki) -> Iterator[TrustServices]:
    state = TrustServices(pki)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real server

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            state.connections.add(self.client_address[1])
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests[self.path] += 1
            if self.path == "/tsa":
                stamper = state.pki.timestamper()
                answer = stamper.async_request_tsa_response(tsp.TimeStampReq.load(body))
                reply = asyncio.run(answer).dump()
                self._answer(state.tsa_status, "application/timestamp-reply", reply)
            else:
                self._answer(200, "application/ocsp-response", state.ocsp_answer(body))

        def do_GET(self) -> None:
            state.connections.add(self.client_address[1])
            state.requests[self.path] += 1
            der = state.pki.crl.public_bytes(serialization.Encoding.DER)
            self._answer(200, "application/pkix-crl", der)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _leaf_with_ocsp(pki: SigningPki, ocsp_url: str) -> asn1_x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OCSP subject")]))
        .issuer_name(pki.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
        .sign(pki.root_key, hashes.SHA256())
    )
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _root(pki: SigningPki) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))


def test_time_stamp_requests_share_one_kept_alive_connection(services: TrustServices) -> None:
    stamper = HttpTimeStamper(lambda: services.url + "/tsa")
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": bytes(32),
            },
        }
    )
    try:
        for _ in range(3):
            reply = asyncio.run(stamper.async_request_tsa_response(request))
            assert reply["status"]["status"].native == "granted"
    finally:
        stamper.close()
    assert services.requests["/tsa"] == 3
    assert len(services.connections) == 1


def test_time_stamp_authority_failures_are_timestamp_request_errors(
    services: TrustServices,
) -> None:
    services.tsa_status = 503
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": bytes(32),
            },
        }
    )
    for url in (services.url + "/tsa", "http://127.0.0.1:9/tsa"):
        stamper = HttpTimeStamper(lambda url=url: url, timeout=2.0)  # type: ignore[misc]
        try:
            with pytest.raises(TimestampRequestError):
                asyncio.run(stamper.async_request_tsa_response(request))
        finally:
            stamper.close()


def _fetch_ocsp(backend: AllowListFetcherBackend, cert, root):  # type: ignore[no-untyped-def]
    fetchers = backend.get_fetchers()
    response = asyncio.run(fetchers.ocsp_fetcher.fetch(cert, AuthorityWithCert(root)))
    # what the validation context embeds in the DSS: the answer counts as fetched
    assert list(fetchers.ocsp_fetcher.fetched_responses()) == [response]
    return response


def test_signing_reuses_an_ocsp_answer_within_its_validity(
    services: TrustServices, pki: SigningPki
) -> None:
    cert, root = _leaf_with_ocsp(pki, services.url + "/ocsp"), _root(pki)
    backend = AllowListFetcherBackend([services.url], cache=RevocationCache(300))
    first = _fetch_ocsp(backend, cert, root)
    second = _fetch_ocsp(backend, cert, root)
    assert second.dump() == first.dump()
    assert services.requests["/ocsp"] == 1
    backend.close_session()


def test_verification_backend_asks_the_responder_every_time(
    services: TrustServices, pki: SigningPki
) -> None:
    cert, root = _leaf_with_ocsp(pki, services.url + "/ocsp"), _root(pki)
    backend = AllowListFetcherBackend([services.url])
    _fetch_ocsp(backend, cert, root)
    _fetch_ocsp(backend, cert, root)
    assert services.requests["/ocsp"] == 2
    assert len(services.connections) == 1  # the session keeps its connection
    backend.close_session()


def test_crl_is_reused_from_the_cache_and_still_counts_as_fetched(
    services: TrustServices,
) -> None:
    backend = AllowListFetcherBackend([services.url], cache=RevocationCache(300))
    crls = []
    for _ in range(2):
        fetchers = backend.get_fetchers()
        crls.append(asyncio.run(fetchers.crl_fetcher._fetch_single(services.url + "/crl")))
        assert [c.dump() for c in fetchers.crl_fetcher.fetched_crls()] == [crls[-1].dump()]
    assert crls[0].dump() == crls[1].dump()
    assert services.requests["/crl"] == 1
    backend.close_session()


def test_urls_outside_the_allow_list_are_never_fetched(
    services: TrustServices, pki: SigningPki
) -> None:
    cert, root = _leaf_with_ocsp(pki, services.url + "/ocsp"), _root(pki)
    backend = AllowListFetcherBackend(["http://127.0.0.1:1/"], cache=RevocationCache(300))
    fetchers = backend.get_fetchers()
    with pytest.raises(Exception, match="OCSP"):
        asyncio.run(fetchers.ocsp_fetcher.fetch(cert, AuthorityWithCert(root)))
    with pytest.raises(requests.RequestException, match="not allowed"):
        asyncio.run(fetchers.crl_fetcher._get(services.url + "/crl", acceptable_content_types=()))
    assert sum(services.requests.values()) == 0


def test_revocation_cache_keeps_answers_until_the_earlier_of_next_update_and_max_age() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    clock = [0.0]
    cache = RevocationCache(300, now=lambda: now, monotonic=lambda: clock[0])
    cache.put("long", b"a", now + dt.timedelta(hours=1))  # capped at 300 s
    cache.put("short", b"b", now + dt.timedelta(seconds=60))  # its own nextUpdate first
    cache.put("stale", b"c", now - dt.timedelta(seconds=1))  # already past: not kept
    cache.put("open", b"d", None)  # no nextUpdate: not kept
    assert (cache.get("long"), cache.get("short"), cache.get("stale"), cache.get("open")) == (
        b"a",
        b"b",
        None,
        None,
    )
    clock[0] = 61
    assert (cache.get("long"), cache.get("short")) == (b"a", None)
    clock[0] = 300
    assert cache.get("long") is None
    disabled = RevocationCache(0, now=lambda: now)
    disabled.put("x", b"x", now + dt.timedelta(hours=1))
    assert disabled.get("x") is None


def test_calls_to_keys_get_what_is_left_of_the_callers_deadline() -> None:
    """A portal that gave SignDocument 2 s must not leave keys working for 20 s."""
    import contextlib

    import grpc
    from egov.keys.v1 import keys_pb2
    from egov_common.deadlines import deadline_scope
    from egov_signing.adapters.keys import GrpcKeysPort

    seen: list[float] = []

    def get_credential(request: object, *, timeout: float, metadata: object) -> object:
        seen.append(timeout)
        return keys_pb2.GetCredentialResponse()

    port = GrpcKeysPort(grpc.insecure_channel("127.0.0.1:9"), deadline=20.0)
    port._stub.GetCredential = get_credential  # type: ignore[method-assign]
    for budget in (None, 2.0, 60.0, -1.0):
        # an empty reply may not convert to a credential: the timeout passed is the point
        with deadline_scope(budget), contextlib.suppress(Exception):
            port.get_credential("cred-1")
    assert seen[0] == 20.0  # no caller deadline: our own cap
    assert 1.5 < seen[1] <= 2.0  # the caller's remaining budget
    assert seen[2] == 20.0  # never more than our cap
    assert seen[3] == 0.0  # already expired: fail at once


def test_one_issuers_revocation_is_not_hidden_by_another_issuers_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = RegistryWithEntries(
        registry_pb2.DOCUMENT_STATUS_REVOKED, registry_pb2.DOCUMENT_STATUS_REGISTERED
    )
    monkeypatch.setattr(registry_adapter, "RegistryClient", lambda *a, **k: registry)
    result = registry_adapter.RegistryLookup(channel=None).check(b"\x00" * 32)  # type: ignore[arg-type]
    assert result.status is RegistryStatus.REVOKED
    assert result.document is not None and result.document.document_id == "DOC-0"


class _FlakyRegistry(registry_pb2_grpc.RegistryServiceServicer):  # type: ignore[misc]
    """Answers ReserveDocumentId after ``failures[key]`` UNAVAILABLEs (for ever: -1); records the
    time each attempt had."""

    def __init__(self, failures: dict[str, int]) -> None:
        self.failures = failures
        self.time_remaining: list[float] = []

    def ReserveDocumentId(self, request, context):  # type: ignore[no-untyped-def]
        self.time_remaining.append(context.time_remaining())
        left = self.failures.get(request.idempotency_key, 0)
        if left:
            self.failures[request.idempotency_key] = left - 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        return registry_pb2.ReserveDocumentIdResponse(
            document_id="DOC-1", verification_url="http://127.0.0.1:8080/verify/DOC-1"
        )


@pytest.fixture
def flaky_registry() -> Iterator[tuple[_FlakyRegistry, grpc.Channel]]:
    from concurrent.futures import ThreadPoolExecutor

    servicer = _FlakyRegistry({"down": -1, "down-twice": 2})
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        channel.close()
        server.stop(None)


def _reservation(key: str) -> RegistrationSpec:
    return RegistrationSpec(Party("TH-JUR", "0105500000001"), "certificate", key)


def test_registry_calls_get_what_is_left_of_the_callers_deadline(
    flaky_registry: tuple[_FlakyRegistry, grpc.Channel],
) -> None:
    # A fixed 10 s per attempt, 6 attempts, would keep the registry registering for a caller
    # who gave SignDocument 1 s and has given up.
    servicer, channel = flaky_registry
    port = GrpcRegistryPort(channel)
    assert port.reserve_document_id(_reservation("up")).document_id == "DOC-1"
    assert servicer.time_remaining[-1] > 9.0  # no caller deadline: our own 10 s

    servicer.time_remaining.clear()
    started = time.monotonic()
    with deadline_scope(1.0), pytest.raises(EgovError) as err:
        port.reserve_document_id(_reservation("down"))
    assert (err.value.code, err.value.reason) == (Code.UNAVAILABLE, "REGISTRY_UNAVAILABLE")
    assert time.monotonic() - started < 1.5
    # each attempt had half of what was left at most (gRPC rounds the timeout it sends up a
    # little), and the retries stopped while the caller was still there
    assert len(servicer.time_remaining) >= 2 and max(servicer.time_remaining) <= 0.6

    # within a deadline with room for them, retries still happen
    servicer.time_remaining.clear()
    with deadline_scope(30.0):
        assert port.reserve_document_id(_reservation("down-twice")).document_id == "DOC-1"
    assert len(servicer.time_remaining) == 3

    servicer.time_remaining.clear()
    with deadline_scope(-1.0), pytest.raises(EgovError) as err:
        port.reserve_document_id(_reservation("up"))
    assert (err.value.code, err.value.reason) == (
        Code.DEADLINE_EXCEEDED,
        "SIGNING_DEADLINE_EXCEEDED",
    )
    assert servicer.time_remaining == []  # the registry was not asked
