"""Run a service as a real process (``python -m <module>``) and wait for it to be healthy.

Integration and e2e tests use :func:`start_service`; the dev runner (``egov_testing.devrun``)
uses :class:`ServiceProcess` directly with fixed ports. Health is polled with a deadline, never
slept on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "ServiceFailedToStart",
    "ServiceProcess",
    "env_prefix_for",
    "free_port",
    "start_service",
    "tree_cpu_seconds",
    "worker_cpu_seconds",
]

_LOG_TAIL_BYTES = 4000
_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat counts CPU time in these


class ServiceFailedToStart(RuntimeError):
    """The process exited or did not report SERVING in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def env_prefix_for(module: str) -> str:
    """``egov_verify_portal`` -> ``VERIFY_PORTAL`` (the ``EGOV_<NAME>_`` part of its variables)."""
    return module.removeprefix("egov_").upper()


@dataclass
class ServiceProcess:
    """One service process. Create, then :meth:`start`, :meth:`wait_healthy`, :meth:`stop`.

    ``grpc_port``/``http_port`` of ``None`` mean the service has no such listener. ``env`` is
    added to the current environment (and wins over it).
    """

    module: str
    data_dir: Path
    log_path: Path
    name: str = ""
    grpc_port: int | None = None
    http_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.name = self.name or env_prefix_for(self.module)

    @property
    def grpc_address(self) -> str:
        if self.grpc_port is None:
            raise AttributeError(f"{self.module} has no gRPC listener")
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        if self.http_port is None:
            raise AttributeError(f"{self.module} has no HTTP listener")
        return f"http://{self.host}:{self.http_port}"

    @property
    def pid(self) -> int:
        return self._process().pid

    @property
    def returncode(self) -> int | None:
        return self._process().poll()

    def process_env(self) -> dict[str, str]:
        prefix = f"EGOV_{self.name}_"
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env[prefix + "DATA_DIR"] = str(self.data_dir)
        if self.grpc_port is not None:
            env[prefix + "GRPC_LISTEN"] = self.grpc_address
        if self.http_port is not None:
            env[prefix + "HTTP_LISTEN"] = f"{self.host}:{self.http_port}"
        env.update(self.env)
        return env

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our signals only, not the terminal's Ctrl-C
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Block until gRPC health says SERVING (or, HTTP-only, the port accepts connections).

        Raises :class:`ServiceFailedToStart` with the log tail if the process exits or the
        deadline passes; the process is killed in the latter case.
        """
        deadline = time.monotonic() + timeout
        if self.grpc_port is not None:
            self._wait_grpc_serving(deadline)
        elif self.http_port is not None:
            self._wait_port_open(deadline)

    def _wait_grpc_serving(self, deadline: float) -> None:
        with self.open_channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._check_alive()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail("did not report SERVING in time")
                try:
                    reply = stub.Check(
                        health_pb2.HealthCheckRequest(service=""),
                        timeout=min(1.0, remaining),
                        wait_for_ready=True,
                    )
                except grpc.RpcError:
                    continue
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                time.sleep(0.05)  # SERVING is one state change away; poll again

    def _wait_port_open(self, deadline: float) -> None:
        assert self.http_port is not None
        while True:
            self._check_alive()
            if time.monotonic() > deadline:
                self._fail("did not open its HTTP port in time")
            try:
                with socket.create_connection((self.host, self.http_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)

    def open_channel(self) -> grpc.Channel:
        """A channel to the service with the TLS material it was started with."""
        env = self.process_env()
        prefix = f"EGOV_{self.name}_"
        if env.get(prefix + "TLS_MODE", "off").lower() != "mtls":
            return grpc.insecure_channel(self.grpc_address)
        from egov_common import tls

        ca_dir = Path(env.get(prefix + "TLS_CA_DIR") or self.data_dir.parent / "service-ca")
        material = tls.dev_material(ca_dir, "egov-testing", ca_dir / "clients" / "egov-testing")
        return grpc.secure_channel(self.grpc_address, tls.client_credentials(material))

    def _check_alive(self) -> None:
        code = self._process().poll()
        if code is not None:
            self._fail(f"exited with code {code} before becoming healthy")

    def _fail(self, problem: str) -> NoReturn:
        self.kill()
        raise ServiceFailedToStart(
            f"{self.module} {problem}; log {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "(no log)"
        return data[-limit:].decode("utf-8", "replace")

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        proc = self._process()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to test graceful drain)."""
        self._process().send_signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int:
        return self._process().wait(timeout=timeout)

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process and every live process under it (its
        forked workers), from Linux's ``/proc``."""
        return tree_cpu_seconds(self.pid)

    def worker_cpu_seconds(self) -> dict[int, float]:
        """CPU time so far of each worker process (``EGOV_<SERVICE>_PROCESSES`` > 1: each live
        child, with whatever runs under it), by pid; a single process: its own, by its pid."""
        return worker_cpu_seconds(self.pid)

    def kill(self) -> None:
        """SIGKILL now (crash tests)."""
        proc = self._process()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.module} was not started")
        return self._proc


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time so far of process ``root`` and its live descendants (Linux)."""
    return _subtree_ticks(root, _children()) / _TICKS


def worker_cpu_seconds(root: int) -> dict[int, float]:
    """CPU time so far of each live child of ``root`` with its descendants, by the child's pid;
    ``{root: its own}`` when it has none (Linux)."""
    children = _children()
    workers = children.get(root) or [root]
    return {pid: _subtree_ticks(pid, children) / _TICKS for pid in workers}


def _children() -> dict[int, list[int]]:
    """The live processes' children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry))
    return children


def _subtree_ticks(root: int, children: dict[int, list[int]]) -> int:
    """utime + stime, in clock ticks, of ``root`` and its descendants in ``children``."""
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def _stat_fields(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@contextlib.contextmanager
def start_service(
    module: str,
    env: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    data_dir: Path | None = None,
    grpc: bool = True,
    http: bool = True,
    timeout: float = 30.0,
) -> Iterator[ServiceProcess]:
    """Start ``python -m <module>`` on free loopback ports and yield it once healthy.

    Sets ``EGOV_<NAME>_GRPC_LISTEN``, ``_HTTP_LISTEN`` and ``_DATA_DIR`` (a fresh temporary
    directory unless ``data_dir`` is given); ``env`` is applied last. ``grpc=False`` for an
    HTTP-only service (waits for its port), ``http=False`` for a gRPC-only one. Output goes to
    ``.log_path``. Stops with SIGTERM (SIGKILL after a grace) on exit.
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="egov-")))
        service = ServiceProcess(
            module=module,
            name=name or "",
            data_dir=data_dir,
            log_path=data_dir / f"{module}.log",
            grpc_port=free_port() if grpc else None,
            http_port=free_port() if http else None,
            env=dict(env or {}),
        )
        service.start()
        try:
            service.wait_healthy(timeout)
            yield service
        finally:
            service.stop()
