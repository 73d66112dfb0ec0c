"""The server's per-call wrapper: deadline, caller identity, error mapping, request log, metrics.

One wrapper so that streaming calls (client-streamed uploads, server-streamed downloads) get the
same treatment as unary ones: the scope spans the whole response stream.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from egov_common.auth import ANONYMOUS, Caller, CallerKind, TokenVerifier, caller_scope
from egov_common.deadlines import deadline_scope
from egov_common.errors import (
    DeadlineExceeded,
    EgovError,
    Internal,
    Unauthenticated,
    Unavailable,
)
from egov_common.logging import current_trace_id, trace_id_var
from egov_common.status import from_rpc_error, to_grpc_status
from egov_common.telemetry import RpcMetrics

log = logging.getLogger("egov.rpc")

_NO_DEADLINE = 10 * 365 * 24 * 3600.0
_INFRA_PREFIX = "/grpc."  # health and reflection: logged at DEBUG, no caller identity


@dataclass
class _Outcome:
    code: str | None = None
    reason: str = ""
    peer_kind: str = CallerKind.ANONYMOUS.value


Scope = Callable[[grpc.ServicerContext], contextlib.AbstractContextManager[None]]


def wrap_handler(handler: grpc.RpcMethodHandler, scope: Scope) -> grpc.RpcMethodHandler:
    """The same handler with every call (including its whole response stream) run in ``scope``."""
    if handler.request_streaming and handler.response_streaming:
        inner, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        inner, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        inner, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        inner, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler

    if handler.response_streaming:

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            with scope(context):
                yield from inner(request, context)

    else:

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            with scope(context):
                return inner(request, context)

    wrapped: grpc.RpcMethodHandler = factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return wrapped


class CallInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Everything ``egov_common.server`` does around a servicer method, in this order:

    1. deadline: ``egov_common.deadlines.remaining()`` reflects the caller's deadline;
    2. caller identity: ``egov_common.auth.current_caller()`` (mTLS peer CN, bearer token);
    3. errors: ``EgovError`` -> ``google.rpc.Status`` with ErrorInfo/BadRequest; an unexpected
       exception -> INTERNAL with reason ``INTERNAL`` and only the trace id as detail;
    4. one log line and the RPC metrics per call (method, code, reason, duration, peer kind).
    """

    def __init__(
        self, token_verifier: TokenVerifier | None = None, rpc_metrics: RpcMetrics | None = None
    ) -> None:
        self._token_verifier = token_verifier
        self._metrics = rpc_metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        return wrap_handler(handler, lambda context: self._scope(method, context))

    @contextlib.contextmanager
    def _scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        started = time.perf_counter()
        outcome = _Outcome()
        trace_token = trace_id_var.set(current_trace_id() or secrets.token_hex(16))
        try:
            with deadline_scope(_time_remaining(context)):
                try:
                    caller = ANONYMOUS
                    if not method.startswith(_INFRA_PREFIX):
                        caller = self._identify(context)
                    outcome.peer_kind = caller.kind.value
                    with caller_scope(caller):
                        yield
                except EgovError as error:
                    self._abort(context, outcome, error)
                except grpc.RpcError as upstream:
                    self._abort(context, outcome, _from_upstream(method, upstream))
                except Exception as exc:
                    code = _context_code(context)
                    if type(exc) is Exception and code not in (None, grpc.StatusCode.OK):
                        outcome.code = code.name  # the servicer called context.abort()
                        raise
                    log.exception("unexpected error serving %s", method)
                    self._abort(
                        context,
                        outcome,
                        Internal("INTERNAL", f"internal error (trace id {current_trace_id()})"),
                    )
        finally:
            self._record(method, context, outcome, started)
            trace_id_var.reset(trace_token)

    def _identify(self, context: grpc.ServicerContext) -> Caller:
        peer_service = _peer_service(context)
        token = _bearer_token(context)
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

    def _record(
        self, method: str, context: grpc.ServicerContext, outcome: _Outcome, started: float
    ) -> None:
        code = outcome.code
        if code is None:
            if context.is_active():
                code = "OK"
            else:
                remaining = _time_remaining(context)
                expired = remaining is not None and remaining <= 0
                code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
        duration_ms = (time.perf_counter() - started) * 1000
        level = logging.DEBUG if method.startswith(_INFRA_PREFIX) else logging.INFO
        log.log(
            level,
            "rpc %s %s",
            method,
            code,
            extra={
                "rpc_method": method,
                "rpc_code": code,
                "rpc_reason": outcome.reason,
                "duration_ms": round(duration_ms, 3),
                "peer_kind": outcome.peer_kind,
            },
        )
        if self._metrics is not None:
            self._metrics.record(method, code, duration_ms)


def _time_remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds left for the call; ``None`` without a deadline (grpc reports ~292 years)."""
    left: float | None = context.time_remaining()
    return None if left is None or left > _NO_DEADLINE else left


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
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    names = auth.get("x509_common_name")
    return names[0].decode() if names else None


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("TOKEN_MALFORMED", "authorization must be 'Bearer <token>'")
            return token.strip()
    return None
