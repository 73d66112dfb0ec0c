"""OpenTelemetry: traces and metrics of one service process.

:func:`setup` installs tracer and meter providers (also as the OpenTelemetry globals, so
``opentelemetry.trace.get_tracer(__name__)`` works in service code). Exporters follow the
standard variables: OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal
``..._TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``) is set, ``OTEL_SDK_DISABLED=true`` turns
everything off, ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` add to the resource. The
setting ``trace_file`` writes finished spans as JSON lines (tests read it). Tests in one process
pass their own exporter/reader. Span attributes must never carry identifiers, tokens or keys.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.grpc import client_interceptor, server_interceptor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

__all__ = [
    "JsonLinesSpanExporter",
    "RpcMetrics",
    "Telemetry",
    "read_spans",
    "setup",
]


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to a file as one JSON object per line (see :func:`read_spans`)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": format(context.trace_id, "032x"),
                        "span_id": format(context.span_id, "016x"),
                        "parent_span_id": format(span.parent.span_id, "016x")
                        if span.parent
                        else None,
                        "status": span.status.status_code.name,
                        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
                    }
                )
            )
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans a :class:`JsonLinesSpanExporter` wrote (empty if the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class RpcMetrics:
    """Calls served: ``egov.rpc.server.calls`` (count) and ``egov.rpc.server.duration`` (ms),
    by ``rpc.method`` and ``rpc.grpc.status_code`` name."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._calls = meter.create_counter(
            "egov.rpc.server.calls", unit="{call}", description="gRPC calls served"
        )
        self._duration = meter.create_histogram(
            "egov.rpc.server.duration", unit="ms", description="gRPC call duration"
        )

    def record(self, method: str, code: str, duration_ms: float) -> None:
        attributes = {"rpc.method": method, "rpc.grpc.status_code": code}
        self._calls.add(1, attributes)
        self._duration.record(duration_ms, attributes)


@dataclass
class Telemetry:
    """The providers of one process, and the gRPC interceptors built on them.

    ``tracing``: some span exporter is configured (OTLP, ``trace_file`` or a test's exporter);
    without one the server records no spans and only carries the trace context through (log
    lines keep the caller's trace id, outgoing calls propagate it). ``metrics``: some metric
    reader is configured; without one nothing would ever read the RPC metrics, so none are kept.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    rpc_metrics: RpcMetrics
    tracing: bool = True
    metrics: bool = True

    def server_interceptor(self) -> grpc.ServerInterceptor:
        """Starts a server span per call, continuing the trace in the caller's metadata."""
        from opentelemetry.instrumentation.grpc import filters

        # Health probes and reflection every few seconds would drown the real traces.
        not_infrastructure = filters.negate(filters.service_prefix("grpc."))
        interceptor: grpc.ServerInterceptor = server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.tracer_provider, filter_=not_infrastructure
        )
        return interceptor

    def client_interceptor(self) -> Any:
        """Starts a client span per outgoing call and injects ``traceparent`` into metadata.

        Apply with ``opentelemetry.instrumentation.grpc.grpcext.intercept_channel``.
        """
        return client_interceptor(tracer_provider=self.tracer_provider)  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        """Flush and stop exporters (at process exit)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup(
    service_name: str,
    settings: Any = None,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Create this process's tracer and meter providers (see the module docstring).

    ``settings`` is a ``ServiceSettings`` (its ``trace_file`` is honoured) or ``None``.
    ``span_exporter``/``metric_reader`` are for tests (e.g. ``InMemorySpanExporter``); they are
    attached synchronously. ``set_global=False`` leaves the OpenTelemetry globals alone.
    """
    resource = Resource.create({"service.name": service_name, "service.namespace": "egov"})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    tracing = False
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        tracing = True
    trace_file = getattr(settings, "trace_file", None)
    if trace_file is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
        tracing = True
    if metric_reader is not None:
        readers.append(metric_reader)
    if _otlp_wanted("TRACES"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracing = True
    if _otlp_wanted("METRICS"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        global _global_tracing
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _global_tracing = tracing
    meter = meter_provider.get_meter("egov_common.server")
    return Telemetry(
        tracer_provider, meter_provider, RpcMetrics(meter), tracing=tracing, metrics=bool(readers)
    )


#: Whether the providers ``setup`` made global export spans; ``None`` before any ``setup``.
_global_tracing: bool | None = None


def global_tracing() -> bool:
    """Whether spans of the global tracer provider go anywhere (True when unknown: another
    provider may have been installed without ``setup``)."""
    return _global_tracing is not False


def _otlp_wanted(signal: str) -> bool:
    exporter = os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        or exporter == "otlp"
    )
