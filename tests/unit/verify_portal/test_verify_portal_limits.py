"""What bounds the portal's memory and time: uploads in flight, stalled bodies, peer deadlines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
import pytest
from egov.registry.v1 import registry_pb2
from egov_common.channels import DeadlineInterceptor, _ClientCallDetails
from egov_common.clock import FixedClock
from egov_common.deadlines import deadline_scope
from egov_verify_portal.adapters import peers
from egov_verify_portal.app import PortalConfig, create_app
from egov_verify_portal.domain.report import ProofCheck, RegistryStatus, VerificationReport
from egov_verify_portal.domain.services import PeerUnavailable
from egov_verify_portal.upload import UploadProblem, UploadRefused, read_upload
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message
from verify_portal_fixtures import DOC_ID, FONTS, MINIMAL_PDF, NOW, FakeTrustServices

WAIT = 30.0  # seconds a test waits for something that takes milliseconds, before it fails


def portal(services: FakeTrustServices, **limits: Any) -> ASGIApp:
    config = PortalConfig(
        max_upload_bytes=64 * 1024,
        seal_key=b"k" * 32,
        report_ttl=timedelta(hours=1),
        fonts=FONTS,
        **limits,
    )
    return create_app(services, config, FixedClock(NOW))


class HeldVerification(FakeTrustServices):
    """Holds each verification until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def verify(self, pdf: bytes, file_name: str, *, language: str) -> VerificationReport:
        self.entered.set()
        assert self.release.wait(WAIT)
        return super().verify(pdf, file_name, language=language)


def post_pdf(client: TestClient) -> Any:
    return client.post("/verify?lang=en", files={"file": ("a.pdf", MINIMAL_PDF, "application/pdf")})


def test_uploads_beyond_the_limit_are_answered_busy_with_retry_after() -> None:
    services = HeldVerification()
    with TestClient(portal(services, max_uploads_in_flight=1)) as client:
        with futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(post_pdf, client)
            assert services.entered.wait(WAIT)
            busy = post_pdf(client)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "10"
            assert "Please try again in a moment" in busy.text
            services.release.set()
            assert first.result(WAIT).status_code == 200
        # the slot is free again
        assert post_pdf(client).status_code == 200
    assert len(services.received) == 2


def asgi_post(app: ASGIApp, path: str, headers: dict[str, str], chunks: list[bytes]) -> Message:
    """POST ``chunks`` to ``app``, then send nothing more (a stalled client); the response."""

    async def run() -> Message:
        incoming = list(chunks)
        sent: list[Message] = []

        async def receive() -> Message:
            if incoming:
                return {"type": "http.request", "body": incoming.pop(0), "more_body": True}
            await asyncio.Event().wait()  # the client stopped sending
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"lang=en",
            "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), WAIT)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return {**start, "body": body}

    return asyncio.run(run())


def test_an_upload_that_stalls_mid_body_is_answered_408_and_its_slot_freed() -> None:
    services = FakeTrustServices()
    app = portal(services, max_uploads_in_flight=1, body_read_timeout=0.05)
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF-1.7'
    response = asgi_post(
        app,
        "/verify",
        {"content-type": "multipart/form-data; boundary=B", "content-length": "100000"},
        [head, b"0" * 4096],
    )
    assert response["status"] == 408
    headers = dict(response["headers"])
    assert headers[b"connection"] == b"close"
    assert b"The upload stalled or was too slow" in response["body"]
    assert services.received == []
    with TestClient(app) as client:  # one slot, and it is free again
        assert post_pdf(client).status_code == 200


def test_a_report_form_that_stalls_is_answered_408() -> None:
    app = portal(FakeTrustServices(), body_read_timeout=0.05)
    response = asgi_post(
        app,
        "/report.pdf",
        {"content-type": "application/x-www-form-urlencoded", "content-length": "5000"},
        [b"report=v2."],
    )
    assert response["status"] == 408


async def trickle(first: bytes, stall: asyncio.Event) -> AsyncIterator[bytes]:
    yield first
    await stall.wait()
    yield b"never"


def test_a_body_that_stops_arriving_is_refused_as_timed_out() -> None:
    async def read() -> None:
        await read_upload(
            "application/pdf",
            None,
            trickle(b"%PDF-1.7\n", asyncio.Event()),
            max_file_bytes=1000,
            idle_timeout=0.05,
        )

    with pytest.raises(UploadRefused) as refused:
        asyncio.run(read())
    assert refused.value.problem is UploadProblem.TIMED_OUT


def test_a_body_that_keeps_trickling_past_the_deadline_is_refused() -> None:
    async def forever() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        while True:
            await asyncio.sleep(0.01)
            yield b"0"

    async def read() -> None:
        await read_upload(
            "application/pdf", None, forever(), max_file_bytes=10**9, idle_timeout=5, deadline=0.1
        )

    with pytest.raises(UploadRefused) as refused:
        asyncio.run(read())
    assert refused.value.problem is UploadProblem.TIMED_OUT


def test_the_limits_have_defaults_that_fit_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    from egov_common.settings import load_settings
    from egov_verify_portal.settings import VerifyPortalSettings

    settings = load_settings(VerifyPortalSettings, "VERIFY_PORTAL")
    # uploads of up to twice 20 MiB each, the report forms and the process fit in 512 MiB
    assert settings.max_uploads_in_flight == 6
    uploads = settings.max_uploads_in_flight * 2 * settings.max_upload_bytes
    report_forms = 8 * 3 * 4 * 1024 * 1024
    assert uploads + report_forms + 110 * 1024 * 1024 < 512 * 1024 * 1024
    assert settings.body_read_timeout == 30.0 and settings.upload_deadline == 300.0
    monkeypatch.setenv("EGOV_VERIFY_PORTAL_MAX_UPLOADS_IN_FLIGHT", "3")
    assert load_settings(VerifyPortalSettings, "VERIFY_PORTAL").max_uploads_in_flight == 3


# ---- one deadline per page -------------------------------------------------------------------


class HungRegistry(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A registry that answers GetDocument after ``delay`` seconds and then hangs every call;
    it records each call and the time its caller left it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method.rsplit("/", 1)[-1]

        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self.lock:
                self.calls.append((method, context.time_remaining() or 0.0))
            if method == "GetDocument" and self.delay:
                asked = registry_pb2.GetDocumentRequest.FromString(request)
                threading.Event().wait(self.delay)
                document = registry_pb2.Document(
                    document_id=asked.document_id,
                    sha256=b"\x01" * 32,
                    status=registry_pb2.DOCUMENT_STATUS_REGISTERED,
                    history=[
                        registry_pb2.StatusChange(status=registry_pb2.DOCUMENT_STATUS_REGISTERED)
                    ],
                )
                return registry_pb2.GetDocumentResponse(document=document).SerializeToString()
            gone = threading.Event()
            context.add_callback(gone.set)
            gone.wait(WAIT)  # until the caller gives up
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "hung")
            raise AssertionError("unreachable")

        return grpc.unary_unary_rpc_method_handler(
            answer, request_deserializer=None, response_serializer=None
        )


@pytest.fixture
def hung_registry() -> Iterator[tuple[HungRegistry, str]]:
    yield from _serve(HungRegistry())


@pytest.fixture
def slow_registry() -> Iterator[tuple[HungRegistry, str]]:
    yield from _serve(HungRegistry(delay=0.4))


def _serve(handler: HungRegistry) -> Iterator[tuple[HungRegistry, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield handler, f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def test_a_hung_registry_is_asked_once_per_page_not_again_and_again(
    hung_registry: tuple[HungRegistry, str],
) -> None:
    handler, address = hung_registry
    with grpc.insecure_channel(address) as channel:
        services = peers.GrpcTrustServices(channel, channel, timeout=0.3)
        with pytest.raises(PeerUnavailable):
            services.registry_entry(DOC_ID)
    assert [method for method, _ in handler.calls] == ["GetDocument"]


def test_the_proof_check_gets_only_what_is_left_of_the_page_s_deadline(
    slow_registry: tuple[HungRegistry, str],
) -> None:
    handler, address = slow_registry
    with grpc.insecure_channel(address) as channel:
        services = peers.GrpcTrustServices(channel, channel, timeout=1.0)
        finding = services.registry_entry(DOC_ID)
    assert finding.status is RegistryStatus.REGISTERED
    assert finding.proof is ProofCheck.NOT_AVAILABLE  # the log could not be asked in time
    (first, first_left), (_, second_left) = handler.calls[:2]
    assert first == "GetDocument" and first_left <= 1.1  # gRPC rounds timeouts up a little
    # GetDocument took 0.4 s of the page's 1 s: the next call had at most the rest
    assert second_left < 0.7
    assert len(handler.calls) == 2  # the hung call ended the page's registry work


def test_a_call_never_gets_more_than_the_page_has_left() -> None:
    seen: list[float | None] = []

    def continuation(details: grpc.ClientCallDetails, request: object) -> None:
        seen.append(details.timeout)

    details = _ClientCallDetails("/m", 60.0, None, None, None, None)
    deadline = DeadlineInterceptor(default_timeout=30.0)  # what open_channel gives the portal
    deadline.intercept_unary_unary(continuation, details, b"")
    with deadline_scope(5.0):
        deadline.intercept_unary_unary(continuation, details, b"")
    with deadline_scope(-1.0):
        deadline.intercept_unary_unary(continuation, details, b"")
    assert seen[0] == 60.0
    assert seen[1] is not None and 4.0 < seen[1] <= 5.0
    assert seen[2] == 0.0
