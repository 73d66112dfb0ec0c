"""gRPC server bootstrap shared by every service.

``__main__.py`` of a service::

    settings = load_settings_or_exit(RegistrySettings, "REGISTRY")
    servicer = RegistryServicer(...)
    serve(
        settings,
        [GrpcService(registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
                     lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                         servicer, server))],
        http_app=build_http_app(...),
    )

:func:`serve` sets up JSON logging and telemetry, then runs gRPC (health, reflection, max message
sizes, mTLS when ``tls_mode=mtls``, the interceptors of ``egov_common._interceptors``, OpenTelemetry
spans) and optionally an ASGI app on ``settings.http_listen`` with uvicorn in a thread. On SIGTERM
or SIGINT every service turns NOT_SERVING, new calls are refused, in-flight calls get
``settings.grace_period`` seconds to finish, ``on_shutdown`` runs, and ``serve`` returns.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from egov_common import tls
from egov_common._interceptors import CallInterceptor
from egov_common.auth import TokenVerifier
from egov_common.logging import setup_logging
from egov_common.settings import ServiceSettings
from egov_common.telemetry import Telemetry
from egov_common.telemetry import setup as setup_telemetry

__all__ = ["BuiltServer", "GrpcService", "HttpServer", "build_server", "serve"]

log = logging.getLogger("egov.server")


@dataclass(frozen=True)
class GrpcService:
    """A servicer to serve: ``name`` is the full proto service name (``egov.registry.v1.Registry
    Service``, used for health and reflection), ``register`` adds it to the server (the generated
    ``add_..._to_server`` or ``server.add_generic_rpc_handlers``)."""

    name: str
    register: Callable[[grpc.Server], None]


@dataclass
class BuiltServer:
    """A configured, not yet started gRPC server; ``port`` is the bound port."""

    server: grpc.Server
    health: health.HealthServicer
    port: int
    service_names: tuple[str, ...]
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()

    def set_serving(self) -> None:
        """Report SERVING for the server (``""``) and every service."""
        for name in ("", *self.service_names):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def drain(self, grace: float) -> None:
        """NOT_SERVING everywhere, refuse new calls, wait up to ``grace`` s for in-flight ones."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def build_server(
    settings: ServiceSettings,
    services: Sequence[GrpcService],
    *,
    token_verifier: TokenVerifier | None = None,
    telemetry: Telemetry | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> BuiltServer:
    """Create and bind the gRPC server of ``serve`` without starting it (tests use it in-process).

    ``interceptors`` run inside the standard ones (after tracing, identity and error mapping).
    Raises ``RuntimeError`` when ``settings.grpc_listen`` cannot be bound.
    """
    tracing = telemetry is not None and telemetry.tracing
    chain: list[grpc.ServerInterceptor] = []
    if tracing:
        assert telemetry is not None
        chain.append(telemetry.server_interceptor())
    chain.append(
        CallInterceptor(
            token_verifier,
            telemetry.rpc_metrics if telemetry is not None and telemetry.metrics else None,
            # No exporter: no span per call, only the caller's trace context carried through.
            propagate_trace=not tracing,
            check_peer_certificate=settings.tls_mode == "mtls",
        )
    )
    chain.extend(interceptors)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="grpc"),
        interceptors=chain,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Never share a port silently with another process (grpc enables SO_REUSEPORT).
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=1),
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(service.name for service in services)
    for service in services:
        service.register(server)
        health_servicer.set(service.name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    listen = settings.grpc_listen
    try:
        if settings.tls_mode == "mtls":
            credentials = tls.server_credentials(tls.material_for(settings))
            port = server.add_secure_port(listen, credentials)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {listen} (grpc_listen): {exc}") from None
    if port == 0:
        raise RuntimeError(f"cannot listen on {listen} (grpc_listen)")
    host = listen.rpartition(":")[0].strip("[]")
    return BuiltServer(server, health_servicer, port, names, host)


@dataclass
class HttpServer:
    """An ASGI app served by uvicorn in a daemon thread of this process."""

    app: Any
    listen: str
    grace_period: float = 10.0
    _server: Any = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> None:
        import uvicorn

        host, _, port = self.listen.rpartition(":")
        config = uvicorn.Config(
            self.app,
            host=host.strip("[]"),
            port=int(port),
            log_config=None,  # keep our JSON logging
            access_log=False,  # the app logs what it needs, without personal data
            server_header=False,  # do not advertise the server software to scanners
            lifespan="auto",
            timeout_graceful_shutdown=max(1, round(self.grace_period)),
        )
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only in the main thread; this is not it.
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"HTTP server could not start on {self.listen} (http_listen)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server did not start on {self.listen} in time")
            time.sleep(0.02)

    def stop(self, timeout: float) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


def serve(
    settings: ServiceSettings,
    services: Sequence[GrpcService],
    *,
    http_app: Any = None,
    on_shutdown: Callable[[], None] | None = None,
    token_verifier: TokenVerifier | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    telemetry: Telemetry | None = None,
) -> None:
    """Run the service until SIGTERM/SIGINT, then drain and return (exit code 0).

    Must be called from the main thread. ``services`` may be empty for an HTTP-only service
    (the verify portal): then no gRPC server is started. ``telemetry`` defaults to
    ``egov_common.telemetry.setup(settings.service_name, settings)``.
    """
    service_name = settings.service_name or "egov"
    setup_logging(service_name, settings.log_level)
    telemetry = telemetry or setup_telemetry(service_name, settings)
    stop = threading.Event()
    received: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)  # no logging inside a signal handler
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    built: BuiltServer | None = None
    if services:
        built = build_server(
            settings,
            services,
            token_verifier=token_verifier,
            telemetry=telemetry,
            interceptors=interceptors,
        )
        built.start()
    http: HttpServer | None = None
    try:
        if http_app is not None:
            if not settings.http_listen:
                raise RuntimeError("an HTTP app needs http_listen")
            http = HttpServer(http_app, settings.http_listen, settings.grace_period)
            http.start()
        if built is not None:
            built.set_serving()
        log.info(
            "serving",
            extra={
                "grpc_address": built.address if built else "",
                "http_listen": settings.http_listen if http else "",
                "tls_mode": settings.tls_mode,
            },
        )
        while not stop.wait(0.5):
            pass
        log.info("received %s, draining", signal.Signals(received[0]).name)
    finally:
        if built is not None:
            built.drain(settings.grace_period)
        if http is not None:
            http.stop(settings.grace_period)
        if on_shutdown is not None:
            on_shutdown()
        log.info("stopped")
        telemetry.shutdown()
