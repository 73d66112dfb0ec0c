"""Traces across services: story 2 of DESIGN.md (an agency's e-seal signs a certificate for a
citizen, the registry registers it) runs across the real processes with OpenTelemetry exported
over OTLP to a receiver in this test, configured only through the standard ``OTEL_*`` variables
(as the Kubernetes manifests do). One trace must hold the spans of signing, keys and registry as
parent and children, and neither a span attribute nor a log line may hold the citizen's national
ID number, a token or key material."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from egov_pki.identifiers import check_digit, is_valid_thai_number
from egov_testing import demo
from egov_testing.platform import start_platform
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

pytestmark = pytest.mark.slow

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")
THIRTEEN_DIGITS = re.compile(r"(?<!\d)\d{13}(?!\d)")


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    start: int
    attributes: dict[str, str]


@dataclass
class OtlpReceiver(grpc.GenericRpcHandler):  # type: ignore[misc]
    """An OTLP/gRPC collector that keeps the spans it is sent and accepts everything else
    (metrics, logs) with an empty, successful answer."""

    requests: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            if method == TRACE_EXPORT:
                with self.lock:
                    self.requests.append(request)
            return b""

        return grpc.unary_unary_rpc_method_handler(export)

    def spans(self) -> list[Span]:
        found = []
        with self.lock:
            requests = list(self.requests)
        for raw in requests:
            export = trace_service_pb2.ExportTraceServiceRequest.FromString(raw)
            for resource_spans in export.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        found.append(
                            Span(
                                service=resource.get("service.name", ""),
                                name=s.name,
                                kind=s.kind,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                start=s.start_time_unix_nano,
                                attributes=_attributes(s.attributes)
                                | {
                                    f"event:{e.name}": str(_attributes(e.attributes))
                                    for e in s.events
                                },
                            )
                        )
        return found


def _attributes(values: list[common_pb2.KeyValue]) -> dict[str, str]:
    return {
        kv.key: str(getattr(kv.value, kv.value.WhichOneof("value") or "string_value"))
        for kv in values
    }


@dataclass(frozen=True)
class TracedStory:
    spans: list[Span]
    logs: dict[str, str]
    national_id: str
    secrets_in_env: list[str]


def _citizen_national_id() -> str:
    first = "3" + "".join(secrets.choice("0123456789") for _ in range(11))
    return first + str(check_digit(first))


@pytest.fixture(scope="module")
def traced_story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedStory]:
    receiver = OtlpReceiver()
    collector = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    collector.add_generic_rpc_handlers((receiver,))
    port = collector.add_insecure_port("127.0.0.1:0")
    collector.start()
    national_id = _citizen_national_id()
    try:
        with pytest.MonkeyPatch.context() as env:
            # The standard variables only, as components/otel-collector sets them in the cluster.
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
            env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            env.setenv("OTEL_TRACES_EXPORTER", "otlp")
            env.setenv("OTEL_PROPAGATORS", "tracecontext,baggage")
            env.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
            with start_platform(tmp_path_factory.mktemp("traced-platform")) as platform:
                demo.agency_issues_certificate(platform, subject=f"TH-PID:{national_id}")
                processes = dict(platform.processes)
                secrets_in_env = [
                    value
                    for process in processes.values()
                    for name, value in process.process_env().items()
                    if name.startswith("EGOV_") and ("KEK" in name or "SEAL_KEY" in name) and value
                ]
            # Every process has stopped: their span processors flushed on shutdown.
        logs = {name: p.log_path.read_text(errors="replace") for name, p in processes.items()}
        yield TracedStory(receiver.spans(), logs, national_id, secrets_in_env)
    finally:
        collector.stop(None)


def _sign_document_span(spans: list[Span]) -> Span:
    roots = [
        s
        for s in spans
        if s.service == "signing" and s.kind == SERVER and s.name.endswith("/SignDocument")
    ]
    assert len(roots) == 1, sorted({(s.service, s.name) for s in spans})
    return roots[0]


def test_one_trace_holds_signing_keys_and_registry_as_parent_and_children(
    traced_story: TracedStory,
) -> None:
    root = _sign_document_span(traced_story.spans)
    trace = [s for s in traced_story.spans if s.trace_id == root.trace_id]
    by_id = {s.span_id: s for s in trace}

    def descends_from_root(span: Span) -> bool:
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            if span == root:
                return True
        return False

    served = {(s.service, s.name.rsplit("/", 1)[-1]): s for s in trace if s.kind == SERVER}
    for service, method in [
        ("keys", "Authorize"),
        ("keys", "SignHash"),
        ("registry", "RegisterDocument"),
    ]:
        span = served.get((service, method))
        assert span is not None, f"no {service} {method} span in the trace: {sorted(served)}"
        caller = by_id.get(span.parent_span_id)
        assert caller is not None and caller.service == "signing" and caller.kind == CLIENT, (
            f"{service} {method} is not a child of a signing client call"
        )
        assert descends_from_root(span), f"{service} {method} is outside SignDocument"
    # Sole control: the hash is authorised before it is signed, and registered after that.
    assert served[("keys", "Authorize")].start < served[("keys", "SignHash")].start
    assert served[("keys", "SignHash")].start < served[("registry", "RegisterDocument")].start


def _leaks(text: str, story: TracedStory) -> list[str]:
    found = []
    if story.national_id in text:
        found.append("the citizen's national ID number")
    found += [
        f"a valid 13-digit ID {m}" for m in THIRTEEN_DIGITS.findall(text) if is_valid_thai_number(m)
    ]
    if JWT.search(text):
        found.append(f"a JWT: {JWT.search(text)[0]}...")  # type: ignore[index]
    if "PRIVATE KEY" in text:
        found.append("a PEM private key")
    found += [
        "a KEK or seal key from the settings" for value in story.secrets_in_env if value in text
    ]
    return found


def test_no_span_attribute_holds_an_id_number_a_token_or_key_material(
    traced_story: TracedStory,
) -> None:
    assert traced_story.spans, "no spans were exported"
    for span in traced_story.spans:
        for key, value in span.attributes.items():
            assert not _leaks(value, traced_story), (
                span.service,
                span.name,
                key,
                _leaks(value, traced_story),
            )


def test_no_log_line_holds_an_id_number_a_token_or_key_material(traced_story: TracedStory) -> None:
    for service, log in traced_story.logs.items():
        for line in log.splitlines():
            assert not _leaks(line, traced_story), (service, _leaks(line, traced_story), line[:300])
