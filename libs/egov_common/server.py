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
``settings.grace_period`` seconds to finish, ``on_shutdown`` runs, and ``serve`` returns. An
address it cannot listen on stops it with one log line naming the variable and exit status 3
(:data:`EXIT_CANNOT_LISTEN`; a malformed setting is status 2, ``load_settings_or_exit``).

Under load: calls run on ``settings.max_workers`` worker threads (``egov_common.executor``);
health checks have two threads of their own, so a server whose workers are all busy still
answers its probes; a call that would wait behind ``settings.max_queued_calls`` queued calls is
refused at once (RESOURCE_EXHAUSTED, reason ``SERVER_BUSY``); and a client stream that sends
nothing for ``settings.stream_idle_timeout`` seconds is ended (``egov_common.streams``), so
idle clients cannot hold the workers. Client-streaming servicers read requests that end only
on the client's half-close (a cancelled upload raises instead of looking complete).

Several processes (``settings.processes`` = N > 1, ``EGOV_<SERVICE>_PROCESSES``): a Python gRPC
server uses one core, so ``serve`` forks N workers that each do all of the above on the same gRPC
and HTTP ports (SO_REUSEPORT: the kernel spreads connections over them), with their own health,
telemetry and log lines (``"worker": n``). The parent binds the ports first (so port 0 and a
port in use are handled once, before any worker starts), then only supervises: SIGTERM/SIGINT is
forwarded to every worker, which drains as above, and ``serve`` returns once all exited 0. If a
worker exits on its own (crash, OOM kill), the parent stops the others and exits with status 1,
so the orchestrator restarts the whole service instead of it serving at part capacity; workers
get SIGTERM if the parent dies. The kernel picks a worker for each new connection at random
(a hash of its addresses and ports), and a connection stays with its worker, so a client's
calls are spread only as far as its connections are. Everything built before ``serve`` is
inherited by every worker through ``fork``: it must hold no gRPC channel or server and no
thread (grpc does not survive a fork; a thread keeps running only in the parent), and database
pools must be left unused or disposed in the child (``RegistryStore`` does this itself).
Start threads and open channels in ``on_worker_start`` instead, which each worker (and a single
process) runs before serving.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
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
from egov_common.executor import CallExecutor
from egov_common.logging import setup_logging
from egov_common.settings import ServiceSettings, env_name
from egov_common.telemetry import Telemetry
from egov_common.telemetry import setup as setup_telemetry

__all__ = [
    "EXIT_CANNOT_LISTEN",
    "BuiltServer",
    "GrpcService",
    "HttpServer",
    "ListenError",
    "build_server",
    "serve",
]

log = logging.getLogger("egov.server")

#: Exit status of :func:`serve` when an address cannot be listened on (in use, not local).
EXIT_CANNOT_LISTEN = 3
#: Threads of the pool that answers health checks and refuses calls while the server is busy.
_INFRASTRUCTURE_THREADS = 2


class ListenError(RuntimeError):
    """An address cannot be listened on; ``setting`` is the field (``grpc_listen``)."""

    def __init__(self, listen: str, setting: str, problem: str = "") -> None:
        self.listen = listen
        self.setting = setting
        self.problem = problem
        detail = f": {problem}" if problem else ""
        super().__init__(f"cannot listen on {listen} ({setting}){detail}")


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
    #: The server's worker threads (ended by :meth:`drain`; their idle threads hold it alive).
    executor: CallExecutor | None = None
    #: The threads that answer health checks and refuse calls while busy (ended by drain).
    infrastructure_pool: futures.ThreadPoolExecutor | None = None

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
        if self.executor is not None:
            self.executor.shutdown(wait=False)
        if self.infrastructure_pool is not None:
            self.infrastructure_pool.shutdown(wait=False)


def build_server(
    settings: ServiceSettings,
    services: Sequence[GrpcService],
    *,
    token_verifier: TokenVerifier | None = None,
    telemetry: Telemetry | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    reuse_port: bool = False,
) -> BuiltServer:
    """Create and bind the gRPC server of ``serve`` without starting it (tests use it in-process).

    ``interceptors`` run inside the standard ones (after tracing, identity and error mapping).
    ``reuse_port``: share the port with the other workers of ``serve`` (SO_REUSEPORT); never
    otherwise, so a second server on a port in use fails instead of silently sharing it.
    Raises :class:`ListenError` (a ``RuntimeError``) when ``settings.grpc_listen`` cannot be
    bound.
    """
    tracing = telemetry is not None and telemetry.tracing
    executor = CallExecutor(
        settings.max_workers,
        max(settings.max_threads, settings.max_workers),
        thread_name_prefix="grpc",
    )
    infrastructure_pool = futures.ThreadPoolExecutor(
        max_workers=_INFRASTRUCTURE_THREADS, thread_name_prefix="grpc-infra"
    )
    calls = CallInterceptor(
        token_verifier,
        telemetry.rpc_metrics if telemetry is not None and telemetry.metrics else None,
        # No exporter: no span per call, only the caller's trace context carried through.
        propagate_trace=not tracing,
        check_peer_certificate=settings.tls_mode == "mtls",
        executor=executor,
        max_queued_calls=settings.max_queued_calls,
        infrastructure_pool=infrastructure_pool,
        stream_idle_timeout=settings.stream_idle_timeout,
    )
    chain: list[grpc.ServerInterceptor] = [calls.admission()]
    if tracing:
        assert telemetry is not None
        chain.append(telemetry.server_interceptor())
    chain.append(calls)
    chain.extend(interceptors)
    server = grpc.server(
        executor,
        interceptors=chain,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Never share a port silently with another process (grpc enables SO_REUSEPORT),
            # except with the sibling workers of serve().
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True, experimental_thread_pool=infrastructure_pool
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
    if settings.tls_mode == "mtls":
        credentials = tls.server_credentials(tls.material_for(settings))
    try:
        if settings.tls_mode == "mtls":
            port = server.add_secure_port(listen, credentials)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ListenError(listen, "grpc_listen", _bind_problem(listen, str(exc))) from None
    if port == 0:
        raise ListenError(listen, "grpc_listen", _bind_problem(listen, ""))
    host = listen.rpartition(":")[0].strip("[]")
    return BuiltServer(
        server, health_servicer, port, names, host, executor, infrastructure_pool
    )


def _bind_problem(listen: str, reported: str) -> str:
    """Why ``listen`` cannot be bound, in the operating system's words when it says (gRPC's
    own message only says to turn on its debug logs)."""
    host, _, port = listen.rpartition(":")
    try:
        _bound_socket(host.strip("[]"), int(port), reuse_port=False).close()
    except (OSError, ValueError) as exc:
        return str(exc)
    return reported


@dataclass
class HttpServer:
    """An ASGI app served by uvicorn in a daemon thread of this process."""

    app: Any
    listen: str
    grace_period: float = 10.0
    #: Bind with SO_REUSEPORT, beside the other workers of ``serve``.
    reuse_port: bool = False
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
        sockets = None
        if self.reuse_port:
            try:
                sockets = [_bound_socket(host.strip("[]"), int(port), reuse_port=True)]
            except OSError as exc:
                raise RuntimeError(f"cannot listen on {self.listen} (http_listen): {exc}") from None
        # uvicorn installs signal handlers only in the main thread; this is not it.
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": sockets}, name="http", daemon=True
        )
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
    on_worker_start: Callable[[int], None] | None = None,
) -> None:
    """Run the service until SIGTERM/SIGINT, then drain and return (exit code 0).

    Must be called from the main thread. ``services`` may be empty for an HTTP-only service
    (the verify portal): then no gRPC server is started. ``telemetry`` defaults to
    ``egov_common.telemetry.setup(settings.service_name, settings)``. With ``settings.processes``
    > 1 the work is done by that many forked workers (see the module docstring); a worker that
    exits on its own makes ``serve`` raise ``SystemExit(1)`` after stopping the others.
    ``on_worker_start(n)`` runs in each worker (n = 0, 1, ...; 0 in a single process) before
    it serves; ``on_shutdown`` runs in each worker after it drained. An address that cannot
    be listened on ends it with one error line naming the variable and ``SystemExit(3)``
    (:data:`EXIT_CANNOT_LISTEN`), not a traceback.
    """
    service_name = settings.service_name or "egov"
    setup_logging(service_name, settings.log_level)
    try:
        _serve(
            settings,
            services,
            http_app=http_app,
            on_shutdown=on_shutdown,
            token_verifier=token_verifier,
            interceptors=interceptors,
            telemetry=telemetry,
            on_worker_start=on_worker_start,
        )
    except ListenError as exc:
        variable = env_name(type(settings), service_name, exc.setting)
        log.error(
            "cannot listen on %s (%s)%s",
            exc.listen,
            variable,
            f": {exc.problem}" if exc.problem else "",
            extra={"setting": variable},
        )
        raise SystemExit(EXIT_CANNOT_LISTEN) from None


def _serve(
    settings: ServiceSettings,
    services: Sequence[GrpcService],
    *,
    http_app: Any,
    on_shutdown: Callable[[], None] | None,
    token_verifier: TokenVerifier | None,
    interceptors: Sequence[grpc.ServerInterceptor],
    telemetry: Telemetry | None,
    on_worker_start: Callable[[int], None] | None,
) -> None:
    if settings.processes > 1:
        if telemetry is not None:
            raise RuntimeError("with processes > 1 every worker sets up its own telemetry")
        _Supervisor(settings, grpc=bool(services), http=http_app is not None).run(
            lambda number, worker_settings: _serve_in_process(
                worker_settings,
                services,
                http_app=http_app,
                on_shutdown=on_shutdown,
                token_verifier=token_verifier,
                interceptors=interceptors,
                telemetry=None,
                on_worker_start=on_worker_start,
                worker=number,
            )
        )
        return
    _serve_in_process(
        settings,
        services,
        http_app=http_app,
        on_shutdown=on_shutdown,
        token_verifier=token_verifier,
        interceptors=interceptors,
        telemetry=telemetry,
        on_worker_start=on_worker_start,
        worker=None,
    )


def _serve_in_process(
    settings: ServiceSettings,
    services: Sequence[GrpcService],
    *,
    http_app: Any,
    on_shutdown: Callable[[], None] | None,
    token_verifier: TokenVerifier | None,
    interceptors: Sequence[grpc.ServerInterceptor],
    telemetry: Telemetry | None,
    on_worker_start: Callable[[int], None] | None,
    worker: int | None,
) -> None:
    """:func:`serve` in this process: alone (``worker`` None) or as worker ``worker``."""
    service_name = settings.service_name or "egov"
    telemetry = telemetry or setup_telemetry(service_name, settings)
    stop = threading.Event()
    received: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)  # no logging inside a signal handler
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    built: BuiltServer | None = None
    http: HttpServer | None = None
    try:
        if on_worker_start is not None:
            on_worker_start(worker or 0)
        if services:
            built = build_server(
                settings,
                services,
                token_verifier=token_verifier,
                telemetry=telemetry,
                interceptors=interceptors,
                reuse_port=worker is not None,
            )
            built.start()
        if http_app is not None:
            if not settings.http_listen:
                raise RuntimeError("an HTTP app needs http_listen")
            if worker is None:  # (a worker's port is held for it by its parent)
                _check_can_listen(settings.http_listen, "http_listen")
            http = HttpServer(
                http_app, settings.http_listen, settings.grace_period, reuse_port=worker is not None
            )
            try:
                http.start()
            except RuntimeError as exc:
                problem = str(exc)
                _, found, reason = problem.partition(f"{settings.http_listen} (http_listen): ")
                raise ListenError(
                    settings.http_listen, "http_listen", reason if found else problem
                ) from None
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


def _check_can_listen(listen: str, setting: str) -> None:
    """Raise :class:`ListenError` with the operating system's reason when ``listen`` cannot be
    bound now (uvicorn would only say that it did not start)."""
    host, _, port = listen.rpartition(":")
    try:
        _bound_socket(host.strip("[]"), int(port), reuse_port=False).close()
    except OSError as exc:
        raise ListenError(listen, setting, str(exc)) from None


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound (not listening) to ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns on TCP_NODELAY for accepted connections only when
    # the listening socket says it is TCP; without it every HTTP response of a worker waited
    # ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _parent_death_signal() -> None:
    """Linux: SIGTERM this process when its parent dies (a worker never outlives the service)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


class _Supervisor:
    """The parent of ``settings.processes`` workers serving the same ports."""

    def __init__(self, settings: ServiceSettings, *, grpc: bool, http: bool) -> None:
        self.settings = settings
        self.grpc = grpc
        self.http = http
        self.workers: dict[int, int] = {}  # pid -> worker number
        self.stop = threading.Event()
        self.received: list[int] = []

    def _reserve(self, listen: str, what: str) -> tuple[str, socket.socket]:
        """Bind ``listen`` with SO_REUSEPORT here: port 0 becomes one port for every worker, a
        port in use fails before any worker starts; the socket never listens, so it gets no
        connections, and holds the port while workers come and go."""
        host, _, port = listen.rpartition(":")
        try:
            sock = _bound_socket(host.strip("[]"), int(port), reuse_port=True)
        except OSError as exc:
            raise ListenError(listen, what, str(exc)) from None
        return f"{host}:{sock.getsockname()[1]}", sock

    def run(self, serve_worker: Callable[[int, ServiceSettings], None]) -> None:
        settings = self.settings
        reserved: list[socket.socket] = []
        update: dict[str, Any] = {"processes": 1}
        try:
            if self.grpc:
                grpc_listen, sock = self._reserve(settings.grpc_listen, "grpc_listen")
                reserved.append(sock)
                update["grpc_listen"] = grpc_listen
            if self.http and settings.http_listen:
                http_listen, sock = self._reserve(settings.http_listen, "http_listen")
                reserved.append(sock)
                update["http_listen"] = http_listen
        except BaseException:
            for sock in reserved:
                sock.close()
            raise
        worker_settings = settings.model_copy(update=update)

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            self.received.append(signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        parent = os.getpid()
        failed = False
        try:
            for number in range(settings.processes):
                pid = os.fork()
                if pid == 0:  # the worker: never returns into the caller
                    self._worker(number, parent, reserved, serve_worker, worker_settings)
                self.workers[pid] = number
            log.info(
                "serving with %d worker processes",
                settings.processes,
                extra={
                    "grpc_address": worker_settings.grpc_listen,
                    "http_listen": worker_settings.http_listen,
                    "workers": ",".join(str(pid) for pid in self.workers),
                },
            )
            failed = self._watch()
        finally:
            failed = not self._stop_all() or failed
            for sock in reserved:
                sock.close()
        if failed:
            log.error("stopped: a worker exited on its own or did not drain cleanly")
            raise SystemExit(1)
        log.info("stopped")

    @staticmethod
    def _worker(
        number: int,
        parent: int,
        reserved: list[socket.socket],
        serve_worker: Callable[[int, ServiceSettings], None],
        settings: ServiceSettings,
    ) -> None:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until serve installs its handler
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _parent_death_signal()
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            for sock in reserved:
                sock.close()
            setup_logging(
                settings.service_name or "egov", settings.log_level, fields={"worker": number}
            )
            serve_worker(number, settings)
            code = 0
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        except ListenError as exc:
            log.error("worker %d: %s", number, exc)
            code = EXIT_CANNOT_LISTEN
        except BaseException:
            log.exception("worker %d failed", number)
        finally:
            logging.shutdown()
            os._exit(code)

    def _watch(self) -> bool:
        """Until a stop is asked (False) or a worker exits on its own (True)."""
        while not self.stop.wait(0.2):
            for pid, status in self._reap():
                log.error(
                    "worker %d (pid %d) exited on its own: %s; stopping the others",
                    self.workers.pop(pid),
                    pid,
                    _describe(status),
                )
                return True
        log.info(
            "received %s, draining %d workers",
            signal.Signals(self.received[0]).name,
            len(self.workers),
        )
        return False

    def _reap(self) -> list[tuple[int, int]]:
        exited = []
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                exited.append((pid, status))
        return exited

    def _stop_all(self) -> bool:
        """SIGTERM every worker left, wait for their drain, SIGKILL what is still running.

        True when every one of them exited with status 0."""
        clean = True
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_period + 15.0
        while self.workers and time.monotonic() < deadline:
            for pid, status in self._reap():
                number = self.workers.pop(pid)
                if status != 0:
                    clean = False
                    log.error("worker %d (pid %d): %s", number, pid, _describe(status))
            time.sleep(0.05)
        for pid, number in list(self.workers.items()):
            log.error("worker %d (pid %d) did not stop in time; killing it", number, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            clean = False
        self.workers.clear()
        return clean


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
