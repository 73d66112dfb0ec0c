"""Each rendered Deployment starts as the cluster would start it: its container command and its
environment (ConfigMaps, Secret references, mounted files), with only hosts, ports, Secret values
and mounted directories replaced by local ones; then the pod's own readiness probe must pass
(gRPC health SERVING, over mTLS where the probe uses it, or the portal's /healthz), and SIGTERM
must end the process cleanly within the pod's grace period. The migration Job of a stateful
service runs first, as in the cluster."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import importlib.util
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from egov_testing.processes import free_port
from grpc_health.v1 import health_pb2, health_pb2_grpc
from k8s_render import SERVICES, Manifest, by_name, container_env, of_kind, pod_spec, render

START_DEADLINE = 90.0  # seconds; generous for a shared 2-core CI machine
OVERLAY = "dev"


def _has_main(package: str) -> bool:
    return importlib.util.find_spec(package) is not None and (
        importlib.util.find_spec(f"{package}.__main__") is not None
    )


def _main_source(package: str) -> str:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    return "\n".join(
        p.read_text() for p in folder.glob("*.py") if p.name in {"__main__.py", "main.py"}
    )


@dataclass
class ServiceCa:
    """A throw-away service CA standing in for the one that fills the <name>-mtls Secrets."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test service CA")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, service: str) -> dict[str, bytes]:
        """The files of a kubernetes.io/tls Secret with ca.crt, as cert-manager writes them."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        import ipaddress

        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(service), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return {
            "ca.crt": self.cert.public_bytes(pem),
            "tls.crt": cert.public_bytes(pem),
            "tls.key": key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        }


def secret_files(secret: str, ca: ServiceCa) -> dict[str, bytes]:
    """Local stand-ins for the Secrets the manifests reference (never in git)."""
    secret = re.sub(r"-[a-z0-9]{10}$", "", secret)  # a generated Secret's content hash
    if secret.endswith("-mtls"):
        return ca.issue(secret.removesuffix("-mtls"))
    if secret in {"keys-kek", "identity-kek"}:
        return {"kek": base64.b64encode(secrets.token_bytes(32))}
    if secret == "registry-log-key":
        key = ec.generate_private_key(ec.SECP256R1())
        return {
            "log-key.pem": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "log-key.pub.pem": key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }
    if secret == "verify-portal-seal-key":
        return {"key": secrets.token_hex(32).encode()}
    raise AssertionError(f"the test has no stand-in for Secret {secret}: add one")


_ADDRESS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)")


@dataclass
class LocalPod:
    """Where a pod's paths, ports and peers live on this machine."""

    root: Path
    ca: ServiceCa
    ports: dict[int, int] = field(default_factory=dict)  # container port -> local port
    named_ports: dict[str, int] = field(default_factory=dict)  # port name -> container port
    peers: dict[str, int] = field(default_factory=dict)  # remote host:port -> unused local port
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath -> local directory

    def mount(self, workload: Manifest, container: Manifest) -> None:
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            local = self.root / "mounts" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            self.mounts[mount["mountPath"]] = local
            volume = volumes[mount["name"]]
            if "secret" in volume:
                files = secret_files(volume["secret"]["secretName"], self.ca)
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in files]
                for item in items:
                    target = local / item["path"]
                    if not target.exists():
                        target.write_bytes(files[item["key"]])
                        target.chmod(0o440)

    def localise(self, value: str) -> str:
        """Paths under a mount -> the local directory; listen and peer addresses -> loopback."""
        if self.mounts:  # one pass: a local path may itself start with a mount path (/tmp)
            paths = "|".join(re.escape(p) for p in sorted(self.mounts, key=len, reverse=True))
            value = re.sub(rf"(?:{paths})(?=/|$|')", lambda m: str(self.mounts[m[0]]), value)

        def address(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if host in {"0.0.0.0", "127.0.0.1"} and port in self.ports:
                local = self.ports[port]
            else:
                local = self.peers.setdefault(f"{host}:{port}", free_port())
            return f"{match['scheme'] or ''}127.0.0.1:{local}"

        return _ADDRESS.sub(address, value)


class _AcceptEverything(grpc.GenericRpcHandler):
    """Answers every unary call with an empty message: an OTLP collector that drops what it gets
    (an empty ``Export...ServiceResponse`` is a success)."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: b"",
            request_deserializer=None,
            response_serializer=None,
        )


@pytest.fixture(scope="module")
def null_collector() -> Iterator[int]:
    """Port of a local stand-in for the OpenTelemetry collector."""
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((_AcceptEverything(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def secret_env(ref_secret: str, key: str, name: str, root: Path) -> str:
    if re.search(r"-database(-[a-z0-9]{10})?$", ref_secret):
        return f"sqlite:///{root / f'{name}.db'}"
    return secret_files(ref_secret, ServiceCa())[key].decode()


def process_env(
    objects: tuple[Manifest, ...], container: Manifest, pod: LocalPod, name: str
) -> dict[str, str]:
    env, refs = container_env(objects, container)
    local = {k: pod.localise(v) for k, v in env.items()}
    for ref in refs:
        local[ref.variable] = secret_env(ref.secret, ref.key, name, pod.root)
    # What the image adds (Dockerfile ENV): nothing but where to find Python and /tmp.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    base.update(
        HOME=str(pod.mounts.get("/tmp", pod.root)), TMPDIR=str(pod.mounts.get("/tmp", pod.root))
    )
    return {**base, **local}


def argv(container: Manifest) -> list[str]:
    command = [*container["command"], *container.get("args", [])]
    assert command[:2] == ["python", "-m"], command
    return [sys.executable, *command[1:]]


def probe_passes(probe: Manifest, pod: LocalPod, env: dict[str, str]) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "grpc" in probe:
        address = f"127.0.0.1:{pod.ports[probe['grpc']['port']]}"
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                    timeout=timeout,
                )
            except grpc.RpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        local = pod.ports[pod.named_ports[port]] if isinstance(port, str) else pod.ports[port]
        try:
            return (
                httpx.get(
                    f"http://127.0.0.1:{local}{probe['httpGet']['path']}", timeout=timeout
                ).status_code
                < 400
            )
        except httpx.HTTPError:
            return False
    if "exec" in probe:
        command = [pod.localise(part) for part in probe["exec"]["command"]]
        assert command[0] == "python"
        done = subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
        )
        return done.returncode == 0
    raise AssertionError(f"unknown probe {probe}")


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def log_tail(log: Path) -> str:
    return log.read_bytes()[-3000:].decode("utf-8", "replace") if log.exists() else "(no log)"


def run_migration_job(
    objects: tuple[Manifest, ...], name: str, package: str, pod: LocalPod
) -> None:
    jobs = [j for j in of_kind(objects, "Job") if j["metadata"]["name"] == f"{name}-migrate"]
    if not jobs:
        return
    if not re.search(r"""["']migrate["']""", _main_source(package)):
        warnings.warn(
            f"{package} has no `migrate` subcommand yet: its migration Job would not finish",
            stacklevel=1,
        )
        return
    (job,) = jobs
    (container,) = pod_spec(job)["containers"]
    pod.mount(job, container)
    env = process_env(objects, container, pod, name)
    done = subprocess.run(argv(container), env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SERVICES))
def test_deployment_starts_as_rendered_and_passes_its_readiness_probe(
    name: str, tmp_path: Path, null_collector: int
) -> None:
    package = SERVICES[name][0]
    if not _has_main(package):
        pytest.skip(f"{package} has no __main__ yet: `python -m {package}` cannot start")
    objects = render(OVERLAY)
    deployment = by_name(objects, "Deployment", name)
    (container,) = pod_spec(deployment)["containers"]
    pod = LocalPod(tmp_path, ServiceCa())
    pod.named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    pod.ports = {p["containerPort"]: free_port() for p in container["ports"]}
    pod.peers["otel-collector.observability.svc:4317"] = null_collector
    pod.mount(deployment, container)
    run_migration_job(objects, name, package, pod)
    env = process_env(objects, container, pod, name)
    log = tmp_path / f"{name}.log"
    grace = float(pod_spec(deployment).get("terminationGracePeriodSeconds", 30))
    with running(argv(container), env, log) as proc:
        deadline = time.monotonic() + START_DEADLINE
        while not probe_passes(container["readinessProbe"], pod, env):
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"{name} never passed its probe:\n{log_tail(log)}"
            time.sleep(0.2)
        assert probe_passes(container["livenessProbe"], pod, env)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{name} outlived its {grace:.0f} s grace period after SIGTERM:\n{log_tail(log)}"
            )
        # 0, or the signal itself re-raised after a graceful shutdown (uvicorn does that).
        assert code in (0, -signal.SIGTERM), (
            f"{name} exited with {code} after SIGTERM:\n{log_tail(log)}"
        )
