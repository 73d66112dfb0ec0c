"""The server's per-call wrapper: deadline, caller identity, error mapping, request log, metrics.

One wrapper so that streaming calls (client-streamed uploads, server-streamed downloads) get the
same treatment as unary ones: the scope spans the whole response stream.

Everything that does not depend on the call is worked out once per method (the wrapped handler,
whether the method is infrastructure, the log level), so a call pays only for what is its own:
reading its metadata once, three context variables, the servicer, one log record and the
metrics.
"""

from __future__ import annotations

import contextvars
import logging
import random
import secrets
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from egov_common._incoming import IncomingCall, incoming_var
from egov_common.auth import ANONYMOUS, Caller, CallerKind, TokenVerifier, caller_var
from egov_common.deadlines import deadline_var
from egov_common.errors import (
    Cancelled,
    DeadlineExceeded,
    EgovError,
    Internal,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from egov_common.executor import CallExecutor
from egov_common.logging import current_trace_id, trace_id_var
from egov_common.status import from_rpc_error, to_grpc_status
from egov_common.streams import ClientStream, StreamIdleWatch
from egov_common.telemetry import RpcMetrics
from egov_common.tls import peer_service

log = logging.getLogger("egov.rpc")

_NO_DEADLINE = 10 * 365 * 24 * 3600.0
_INFRA_PREFIX = "/grpc."  # health and reflection: logged at DEBUG, no caller identity
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
#: Metadata keys the trace context travels in (W3C trace context and baggage).
_TRACE_KEYS = frozenset({"traceparent", "tracestate", "baggage"})
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


@dataclass
class _Outcome:
    code: str | None = None
    reason: str = ""
    peer_kind: str = CallerKind.ANONYMOUS.value


@dataclass(frozen=True, slots=True)
class _Method:
    """What is known about a method before any call arrives."""

    name: str
    infrastructure: bool
    level: int


class _Call:
    """The state of one call between its start and its request log line."""

    __slots__ = (
        "authorization",
        "caller_token",
        "deadline_token",
        "incoming",
        "incoming_token",
        "otel_token",
        "outcome",
        "started",
        "stream",
        "trace_id",
        "trace_token",
    )

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.outcome = _Outcome()
        self.trace_id = ""
        self.trace_token: contextvars.Token[str] | None = None
        self.deadline_token: contextvars.Token[float | None] | None = None
        self.caller_token: contextvars.Token[Caller] | None = None
        self.otel_token: object = None
        self.authorization: tuple[str | bytes, ...] = ()
        self.incoming: IncomingCall | None = None
        self.incoming_token: contextvars.Token[IncomingCall | None] | None = None
        self.stream: ClientStream[Any] | None = None


class CallInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Everything ``egov_common.server`` does around a servicer method, in this order:

    1. trace: with ``propagate_trace`` (no tracing interceptor outside this one, i.e. no span
       exporter configured) the caller's W3C trace context is continued without recording a
       span: log lines carry the caller's trace id and outgoing calls propagate it; a call
       without one gets a fresh trace id. Otherwise the OpenTelemetry server span's id is used;
    2. deadline: ``egov_common.deadlines.remaining()`` reflects the caller's deadline;
    3. caller identity: ``egov_common.auth.current_caller()`` (mTLS peer: the service its
       certificate's DNS SANs name, ``egov_common.tls.peer_service``; bearer token);
       ``check_peer_certificate=False`` (a plaintext server) skips the TLS peer lookup;
    4. errors: ``EgovError`` -> ``google.rpc.Status`` with ErrorInfo/BadRequest; an unexpected
       exception -> INTERNAL with reason ``INTERNAL`` and only the trace id as detail; a call
       its client cancelled or let expire -> CANCELLED / DEADLINE_EXCEEDED (not a fault of
       ours, nor a peer's); a method left to the generated base servicer -> UNIMPLEMENTED;
    5. one log line and the RPC metrics per call (method, code, reason, duration, peer kind).

    Around that, with the server's ``executor`` and ``infrastructure_pool``: a call that would
    wait behind ``max_queued_calls`` queued ones is refused at once (RESOURCE_EXHAUSTED,
    ``SERVER_BUSY``; by :meth:`admission`, first in the chain) on the infrastructure pool, where
    health checks run too, so neither waits for a worker; a client stream is read through
    ``egov_common.streams`` (ended only by the client's half-close, and cut after
    ``stream_idle_timeout`` seconds without a message); and
    calls made through ``egov_common.channels`` while serving are cancelled when the call ends
    before its servicer does (``egov_common._incoming``).
    """

    def __init__(
        self,
        token_verifier: TokenVerifier | None = None,
        rpc_metrics: RpcMetrics | None = None,
        *,
        propagate_trace: bool = False,
        check_peer_certificate: bool = True,
        executor: CallExecutor | None = None,
        max_queued_calls: int | None = None,
        infrastructure_pool: futures.ThreadPoolExecutor | None = None,
        stream_idle_timeout: float | None = None,
    ) -> None:
        self._token_verifier = token_verifier
        self._metrics = rpc_metrics
        self._propagate_trace = propagate_trace
        self._check_peer = check_peer_certificate
        self._executor = executor if max_queued_calls is not None else None
        self._max_queued = max_queued_calls if max_queued_calls is not None else 0
        self._infrastructure_pool = infrastructure_pool
        self._idle_watch = StreamIdleWatch(stream_idle_timeout) if stream_idle_timeout else None
        # method -> (the handler grpc found, our wrapper of it, the refusal when busy): built on
        # a method's first call.
        self._wrapped: dict[
            str,
            tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler, grpc.RpcMethodHandler | None],
        ] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._prepare(method, handler)
            self._wrapped[method] = cached
        return cached[1]

    def admission(self) -> grpc.ServerInterceptor:
        """The interceptor to put first in the server's chain (outside tracing, whose wrapper
        would lose the refusal's thread pool): it answers calls with SERVER_BUSY while
        ``max_queued_calls`` calls wait for a worker."""
        return _Admission(self)

    def busy(self) -> bool:
        """Whether a call now would wait behind ``max_queued_calls`` others. Read on grpc's
        polling thread, the only one that queues calls: exact for the call it admits."""
        return self._executor is not None and not self._executor.has_room(self._max_queued)

    def refusal(self, method: str) -> grpc.RpcMethodHandler | None:
        """The SERVER_BUSY answer for ``method`` (None: never refused, e.g. health checks)."""
        cached = self._wrapped.get(method)
        return None if cached is None else cached[2]

    def _prepare(
        self, method: str, handler: grpc.RpcMethodHandler
    ) -> tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler, grpc.RpcMethodHandler | None]:
        """(handler, its wrapper, the refusal to answer instead while the server is busy)."""
        infrastructure = method.startswith(_INFRA_PREFIX)
        info = _Method(method, infrastructure, logging.DEBUG if infrastructure else logging.INFO)
        inner = _behavior(handler)
        if getattr(inner, "experimental_non_blocking", False):
            # Callback style (health Watch): it returns at once and runs on its own pool; our
            # wrapper would turn it into a stream that holds a worker for as long as it lasts.
            return handler, handler, None
        pool = getattr(inner, "experimental_thread_pool", None)
        if method == _HEALTH_CHECK and self._infrastructure_pool is not None:
            pool = self._infrastructure_pool  # answered however busy the workers are
        wrapped = self._wrap(handler, info, pool)
        if pool is not None or self._executor is None or self._infrastructure_pool is None:
            return handler, wrapped, None
        return handler, wrapped, self._refusal(info)

    def _refusal(self, info: _Method) -> grpc.RpcMethodHandler:
        """A handler that refuses the call as SERVER_BUSY without reading its request.

        Client-streaming whatever the method (the wire is the same): gRPC then calls it without
        waiting for a request message, on the infrastructure pool, so a refusal never waits."""
        start, record = self._start, self._finish

        def refuse(request_iterator: Any, context: grpc.ServicerContext) -> Any:
            call = start(info, context)
            try:
                self._abort(
                    context,
                    call.outcome,
                    ResourceExhausted("SERVER_BUSY", "the server is busy; try again shortly"),
                )
            finally:
                record(info, call, context)

        refuse.experimental_thread_pool = self._infrastructure_pool  # type: ignore[attr-defined]
        handler: grpc.RpcMethodHandler = grpc.stream_unary_rpc_method_handler(refuse)
        return handler

    def _wrap(
        self, handler: grpc.RpcMethodHandler, info: _Method, pool: futures.Executor | None = None
    ) -> grpc.RpcMethodHandler:
        """The same handler with every call (including its whole response stream) in scope."""
        if handler.request_streaming and handler.response_streaming:
            inner, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            inner, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            inner, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            inner, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        start, admit, failed, finish = self._start, self._admit, self._failed, self._finish
        if handler.request_streaming:  # reflection's streams too: an idle one holds a thread
            watch = self._idle_watch

            def arguments(request: Any, context: grpc.ServicerContext, call: _Call) -> Any:
                call.stream = ClientStream(request, context, watch)
                return call.stream

        else:

            def arguments(request: Any, context: grpc.ServicerContext, call: _Call) -> Any:
                return request

        if handler.response_streaming:

            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                call = start(info, context)
                try:
                    admit(info, call, context)
                    yield from inner(arguments(request, context, call), context)
                except Exception as exc:
                    failed(info, call, context, exc)
                    raise
                finally:
                    finish(info, call, context)

        else:

            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                call = start(info, context)
                try:
                    admit(info, call, context)
                    return inner(arguments(request, context, call), context)
                except Exception as exc:
                    failed(info, call, context, exc)
                    raise
                finally:
                    finish(info, call, context)

        if pool is not None:
            behavior.experimental_thread_pool = pool  # type: ignore[attr-defined]
        wrapped: grpc.RpcMethodHandler = factory(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return wrapped

    # -- one call ----------------------------------------------------------------------------

    def _start(self, info: _Method, context: grpc.ServicerContext) -> _Call:
        """Trace id and deadline of the call (never raises)."""
        call = _Call()
        authorization: tuple[str | bytes, ...] = ()
        carrier: dict[str, str] | None = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization += (value,)
            elif key in _TRACE_KEYS and isinstance(value, str):
                if carrier is None:
                    carrier = {}
                carrier[key] = value
        if self._propagate_trace and not info.infrastructure:
            # The caller's context (with its baggage and trace state), else a fresh trace.
            ctx = propagate.extract(carrier) if carrier is not None else otel_context.Context()
            span_context = trace.get_current_span(ctx).get_span_context()
            if not span_context.is_valid:
                # Ids as OpenTelemetry's own generator makes them: unique, not secret. (The
                # module's generator is reseeded in forked workers; an instance would not be.)
                span_context = trace.SpanContext(
                    random.getrandbits(128) or 1,
                    random.getrandbits(64) or 1,
                    is_remote=False,
                    trace_flags=_SAMPLED,
                )
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context), ctx)
            call.otel_token = otel_context.attach(ctx)
            call.trace_id = format(span_context.trace_id, "032x")
        else:
            call.trace_id = current_trace_id() or secrets.token_hex(16)
        call.trace_token = trace_id_var.set(call.trace_id)
        call.deadline_token = deadline_var.set(_deadline(context))
        call.authorization = authorization
        if not info.infrastructure:
            call.incoming = IncomingCall(context)
            call.incoming_token = incoming_var.set(call.incoming)
        return call

    def _admit(self, info: _Method, call: _Call, context: grpc.ServicerContext) -> None:
        """Make the caller current; an unacceptable token raises ``Unauthenticated``."""
        if info.infrastructure:
            return
        caller = self._identify(context, call.authorization)
        call.outcome.peer_kind = caller.kind.value
        call.caller_token = caller_var.set(caller)

    def _failed(
        self, info: _Method, call: _Call, context: grpc.ServicerContext, exc: Exception
    ) -> None:
        """Map ``exc`` to the call's status (raising grpc's abort), or return to re-raise it."""
        if isinstance(exc, EgovError):
            self._abort(context, call.outcome, exc)
        elif isinstance(exc, grpc.RpcError | grpc.FutureCancelledError) and (
            not context.is_active()
        ):
            # The client cancelled or ran out of time, and its request stream (a bare RpcError)
            # or a call to a peer (cancelled with it, egov_common._incoming) failed because of it.
            self._abort(context, call.outcome, _ended_by_client(context))
        elif isinstance(exc, grpc.RpcError):
            self._abort(context, call.outcome, _from_upstream(info.name, exc))
        else:
            code = _context_code(context)
            if type(exc) is Exception and code not in (None, grpc.StatusCode.OK):
                call.outcome.code = code.name  # the servicer called context.abort()
                return
            if isinstance(exc, NotImplementedError) and code is grpc.StatusCode.UNIMPLEMENTED:
                # the generated base servicer: an RPC of the .proto this service does not serve
                self._abort(
                    context,
                    call.outcome,
                    Unimplemented("METHOD_NOT_IMPLEMENTED", "this method is not implemented"),
                )
            log.exception("unexpected error serving %s", info.name)
            self._abort(
                context,
                call.outcome,
                Internal("INTERNAL", f"internal error (trace id {call.trace_id})"),
            )

    def _finish(self, info: _Method, call: _Call, context: grpc.ServicerContext) -> None:
        try:
            if call.stream is not None:
                call.stream.close()
            if call.incoming is not None:
                call.incoming.served()
            self._record(info, context, call)
        finally:
            if call.incoming_token is not None:
                incoming_var.reset(call.incoming_token)
            if call.caller_token is not None:
                caller_var.reset(call.caller_token)
            if call.deadline_token is not None:
                deadline_var.reset(call.deadline_token)
            if call.trace_token is not None:
                trace_id_var.reset(call.trace_token)
            if call.otel_token is not None:
                otel_context.detach(call.otel_token)  # type: ignore[arg-type]

    def _identify(
        self, context: grpc.ServicerContext, authorization: tuple[str | bytes, ...]
    ) -> Caller:
        peer_service = _peer_service(context) if self._check_peer else None
        token = _bearer_token(authorization)
        if token is not None:
            if self._token_verifier is None:  # fail closed: a token we cannot check is refused
                raise Unauthenticated(
                    "TOKEN_NOT_ACCEPTED", "this service does not accept bearer tokens"
                )
            return self._token_verifier(token, peer_service=peer_service)
        if peer_service is not None:
            return Caller(CallerKind.SERVICE, subject=peer_service, peer_service=peer_service)
        return ANONYMOUS

    @staticmethod
    def _abort(context: grpc.ServicerContext, outcome: _Outcome, error: EgovError) -> None:
        outcome.code, outcome.reason = error.code.value, error.reason
        status = to_grpc_status(error)
        context.set_code(status.code)  # lets the tracing wrapper mark the span as failed
        context.set_details(status.details)
        context.abort_with_status(status)

    def _record(self, info: _Method, context: grpc.ServicerContext, call: _Call) -> None:
        outcome = call.outcome
        code = outcome.code
        if code is None:
            if context.is_active():
                code = "OK"
            else:
                remaining = _time_remaining(context)
                expired = remaining is not None and remaining <= 0
                code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
        duration_ms = (time.perf_counter() - call.started) * 1000
        if log.isEnabledFor(info.level):
            # makeRecord + handle: the same record log.log() makes, without walking the stack
            # for a caller's file and line that the JSON lines do not show.
            record = log.makeRecord(
                log.name,
                info.level,
                "",
                0,
                "rpc %s %s",
                (info.name, code),
                None,
                extra={
                    "rpc_method": info.name,
                    "rpc_code": code,
                    "rpc_reason": outcome.reason,
                    "duration_ms": round(duration_ms, 3),
                    "peer_kind": outcome.peer_kind,
                },
            )
            log.handle(record)
        if self._metrics is not None:
            self._metrics.record(info.name, code, duration_ms)


def _deadline(context: grpc.ServicerContext) -> float | None:
    """The call's deadline on ``time.monotonic()``'s clock, or ``None``."""
    left = _time_remaining(context)
    return None if left is None else time.monotonic() + left


def _time_remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds left for the call; ``None`` without a deadline (grpc reports ~292 years)."""
    left: float | None = context.time_remaining()
    return None if left is None or left > _NO_DEADLINE else left


class _Admission(grpc.ServerInterceptor):  # type: ignore[misc]
    """See :meth:`CallInterceptor.admission`."""

    def __init__(self, calls: CallInterceptor) -> None:
        self._calls = calls

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)  # also prepares the refusal
        if handler is None or not self._calls.busy():
            return handler
        refusal = self._calls.refusal(handler_call_details.method)
        return handler if refusal is None else refusal


def _ended_by_client(context: grpc.ServicerContext) -> EgovError:
    """Why a call that is no longer active ended: its deadline passed, or its client left."""
    remaining = _time_remaining(context)
    if remaining is not None and remaining <= 0:
        return DeadlineExceeded("DEADLINE_EXCEEDED", "the call's deadline passed")
    return Cancelled("CLIENT_CANCELLED", "the client cancelled the call")


def _behavior(handler: grpc.RpcMethodHandler) -> Any:
    if handler.request_streaming:
        return handler.stream_stream if handler.response_streaming else handler.stream_unary
    return handler.unary_stream if handler.response_streaming else handler.unary_unary


def _context_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    try:
        code: grpc.StatusCode | None = context.code()
    except (AttributeError, RuntimeError):
        return None
    return code


def _from_upstream(method: str, upstream: grpc.RpcError) -> EgovError:
    """A failed call to a peer that the servicer did not handle."""
    error = from_rpc_error(upstream)
    log.warning(
        "call to a peer failed while serving %s",
        method,
        extra={"upstream_code": error.code.value, "upstream_reason": error.reason},
    )
    metadata = {"upstream_code": error.code.value, "upstream_reason": error.reason}
    if isinstance(error, DeadlineExceeded):
        return DeadlineExceeded("DEADLINE_EXCEEDED", "a downstream call ran out of time")
    if isinstance(error, Unavailable):
        return Unavailable(
            "UPSTREAM_UNAVAILABLE", "a peer service is unavailable", metadata=metadata
        )
    return Internal("UPSTREAM_FAILED", "a peer service call failed", metadata=metadata)


def _peer_service(context: grpc.ServicerContext) -> str | None:
    """The mTLS caller's service name: the one its certificate's DNS SANs name (``tls``)."""
    return peer_service(context.auth_context())


def _bearer_token(values: tuple[str | bytes, ...]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header; ``None`` without one.

    Several ``authorization`` headers are refused: which one counts would depend on who reads
    them (a proxy, this server), so a caller could be one identity to one and another to the
    other."""
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated("TOKEN_MALFORMED", "more than one authorization header")
    (value,) = values
    text = value.decode() if isinstance(value, bytes) else value
    scheme, _, token = text.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("TOKEN_MALFORMED", "authorization must be 'Bearer <token>'")
    return token.strip()
