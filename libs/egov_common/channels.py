"""Client channels to other services with the server's TLS, deadline and tracing rules.

    channel = open_channel(settings.keys_address, settings)
    keys = keys_pb2_grpc.KeysServiceStub(channel)

Calls without an explicit ``timeout`` get what is left of the incoming call's deadline
(``egov_common.deadlines.remaining()``), or ``settings.default_deadline`` outside a call; an
explicit ``timeout`` is cut to what is left of the incoming deadline (a peer never works for a
caller that has given up). Calls made while serving a call are cancelled when that call is
(its client cancelled, or its deadline passed) before its servicer is done: the peers stop
working for nobody (``egov_common._incoming``). To be cancellable, a blocking unary call made
while serving is made as a future and waited for (gRPC gives no handle on a blocking call);
that costs the calling service about 0.3 ms of CPU per call (a hand-off to the channel's
thread), measured on the development machine.
With ``tls_mode=mtls`` the channel presents this service's certificate and trusts only the
service CA.

A peer may serve from several worker processes on one port (``EGOV_<NAME>_PROCESSES``): its
kernel hands each new connection to one of them, and a gRPC connection keeps its worker. One
connection would put all of this service's calls on one worker, so the channel holds
``settings.peer_connections`` connections (:class:`SpreadChannel`) and gives them calls in turn.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import grpc
from opentelemetry import propagate
from opentelemetry.instrumentation.grpc._client import OpenTelemetryClientInterceptor

from egov_common import tls
from egov_common._incoming import incoming_var
from egov_common.deadlines import remaining
from egov_common.settings import ServiceSettings
from egov_common.telemetry import Telemetry, global_tracing

__all__ = ["DeadlineInterceptor", "SpreadChannel", "open_channel"]


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _ClientCallDetails(_CallDetails, grpc.ClientCallDetails):  # type: ignore[misc]
    pass


class DeadlineInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Gives calls the incoming call's remaining time (at most; the whole of it when they have
    no timeout of their own), else their own timeout or a default."""

    def __init__(self, default_timeout: float) -> None:
        self._default = default_timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        timeout: float | None = details.timeout
        left = remaining()
        if left is not None:
            left = max(left, 0.0)
            timeout = left if timeout is None else min(timeout, left)
        elif timeout is None:
            timeout = self._default
        return _ClientCallDetails(
            details.method,
            timeout,
            details.metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        return continuation(self._details(details), request_iterator)


class _CancelledWithIncoming(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Hands each call made while serving to the incoming call, which cancels it if it ends
    first. The innermost interceptor: it sees gRPC's own call objects (the tracing one may
    wrap a response stream in a generator that cannot be cancelled)."""

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return _tracked(continuation(details, request))

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return _tracked(continuation(details, request))

    def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        return _tracked(continuation(details, request_iterator))

    def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        return _tracked(continuation(details, request_iterator))


def _tracked(call: Any) -> Any:
    """``call``, handed to the incoming call being served (if any) while it is in flight."""
    incoming = incoming_var.get()
    if incoming is not None and not call.done():  # a blocking call comes back done
        incoming.track(call)
    return call


class _CancellableWhileServing:
    """A unary-response multicallable whose blocking calls, made while serving a call, are
    futures waited for: then the incoming call can cancel them (see the module)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if incoming_var.get() is None:
            return self._inner(request, *args, **kwargs)
        return _result(self._inner.future(request, *args, **kwargs))

    def with_call(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if incoming_var.get() is None:
            return self._inner.with_call(request, *args, **kwargs)
        future = self._inner.future(request, *args, **kwargs)
        return _result(future), future

    def future(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return self._inner.future(request, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _result(future: Any) -> Any:
    """What the blocking call would have answered or raised: a cancelled call raises itself
    (a ``grpc.RpcError`` with code CANCELLED), not ``grpc.FutureCancelledError``."""
    try:
        return future.result()
    except grpc.FutureCancelledError:
        raise future from None


class _ServingChannel(grpc.Channel):  # type: ignore[misc]
    """A channel whose unary-response calls are :class:`_CancellableWhileServing`."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _CancellableWhileServing(self._channel.unary_unary(method, *args, **kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _CancellableWhileServing(self._channel.stream_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.unary_stream(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_stream(method, *args, **kwargs)

    def subscribe(self, callback: Callable[..., None], try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[..., None]) -> None:
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> _ServingChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TracingInterceptor(OpenTelemetryClientInterceptor):
    """OpenTelemetry's client interceptor when spans are exported; otherwise, per call, only the
    current trace context injected into the metadata (no span that nothing would read), so the
    callee's log lines still carry the caller's trace id."""

    def __init__(self, tracer: Any, tracing: Callable[[], bool]) -> None:
        super().__init__(tracer)  # type: ignore[no-untyped-call]
        self._tracing = tracing

    @staticmethod
    def _with_context(metadata: Any) -> tuple[tuple[str, str], ...]:
        carrier: OrderedDict[str, str] = OrderedDict(metadata or ())
        propagate.inject(carrier)
        return tuple(carrier.items())

    def intercept_unary(self, request: Any, metadata: Any, client_info: Any, invoker: Any) -> Any:
        if self._tracing():
            return super().intercept_unary(request, metadata, client_info, invoker)  # type: ignore[no-untyped-call]
        return invoker(request, self._with_context(metadata))

    def intercept_stream(
        self, request_or_iterator: Any, metadata: Any, client_info: Any, invoker: Any
    ) -> Any:
        if self._tracing():
            return super().intercept_stream(  # type: ignore[no-untyped-call]
                request_or_iterator, metadata, client_info, invoker
            )
        return invoker(request_or_iterator, self._with_context(metadata))


class _InTurn:
    """A multi-callable of each connection; every call (or ``with_call``, ``future``) goes to
    the next one."""

    def __init__(self, callables: Sequence[Any], turns: Iterator[int]) -> None:
        self._callables = callables
        self._turns = turns

    def _next(self) -> Any:
        return self._callables[next(self._turns) % len(self._callables)]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._next()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._next(), name)


class SpreadChannel(grpc.Channel):  # type: ignore[misc]
    """Several channels to one address, each with a connection of its own, taking calls in
    turn (see the module). Connectivity (``subscribe``, ``grpc.channel_ready_future``) is the
    first channel's; :meth:`close` closes them all."""

    def __init__(self, channels: Sequence[grpc.Channel]) -> None:
        if not channels:
            raise ValueError("a SpreadChannel needs at least one channel")
        self.channels = list(channels)
        self._turns = itertools.count()  # next() on it is atomic under the GIL

    def _spread(self, kind: str, method: str, args: Any, kwargs: Any) -> _InTurn:
        callables = [getattr(c, kind)(method, *args, **kwargs) for c in self.channels]
        return _InTurn(callables, self._turns)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._spread("unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._spread("unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._spread("stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._spread("stream_stream", method, args, kwargs)

    def subscribe(self, callback: Callable[..., None], try_to_connect: bool = False) -> None:
        self.channels[0].subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[..., None]) -> None:
        self.channels[0].unsubscribe(callback)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> SpreadChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_channel(
    address: str,
    settings: ServiceSettings,
    *,
    telemetry: Telemetry | None = None,
    tls_material: tls.TlsMaterial | None = None,
    connections: int | None = None,
) -> grpc.Channel:
    """A channel to ``address`` (``host:port``) using ``settings`` of the calling service.

    TLS follows ``settings.tls_mode`` (``tls_material`` overrides the material, e.g. for a test
    client); tracing uses ``telemetry``'s tracer provider, else the global one; message size
    limits and the deadline rule are the server's. ``connections`` (default
    ``settings.peer_connections``) connections take the calls in turn (:class:`SpreadChannel`);
    each connects on its first call. Close the channel when done.
    """
    count = settings.peer_connections if connections is None else connections
    if count < 1:
        raise ValueError("connections must be at least 1")
    material = tls_material
    if material is None and settings.tls_mode == "mtls":
        material = tls.material_for(settings)
    if count == 1:
        return _one_channel(address, settings, telemetry, material, ())
    # Channels of one process with the same target and options share one connection unless
    # each keeps its own subchannels.
    own = (("grpc.use_local_subchannel_pool", 1),)
    return SpreadChannel(
        [_one_channel(address, settings, telemetry, material, own) for _ in range(count)]
    )


def _one_channel(
    address: str,
    settings: ServiceSettings,
    telemetry: Telemetry | None,
    material: tls.TlsMaterial | None,
    extra_options: Sequence[tuple[str, Any]],
) -> grpc.Channel:
    """One connection: TLS with ``material`` (plaintext without), tracing, deadlines."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        *extra_options,
    ]
    if material is not None:
        channel = grpc.secure_channel(address, tls.client_credentials(material), options)
    else:
        channel = grpc.insecure_channel(address, options)
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
    from opentelemetry.instrumentation.grpc.version import __version__ as instrumentation

    provider = telemetry.tracer_provider if telemetry is not None else None
    # The tracer opentelemetry.instrumentation.grpc.client_interceptor() would use.
    tracer = trace.get_tracer(
        "opentelemetry.instrumentation.grpc",
        instrumentation,
        provider,
        schema_url="https://opentelemetry.io/schemas/1.11.0",
    )
    # Decided per call: the service's telemetry may be set up after its channels are opened.
    exporting = (lambda: telemetry.tracing) if telemetry is not None else global_tracing
    tracing = _TracingInterceptor(tracer, exporting)
    # The deadline interceptor runs first so the client span sees the effective timeout.
    channel = grpc.intercept_channel(channel, _CancelledWithIncoming())
    traced = intercept_channel(channel, tracing)  # type: ignore[no-untyped-call]
    return _ServingChannel(
        grpc.intercept_channel(traced, DeadlineInterceptor(settings.default_deadline))
    )
