"""Keys benchmarks (``make bench``): SignHash/s over gRPC for software and SoftHSM-wrapped P-256
keys with 1 and 2 worker processes, Authorize+SignHash latency, OCSP and TSA throughput.
Results go to ``bench/results-keys.json``. Numbers are reported, never asserted.

"2 workers" is one service with ``EGOV_KEYS_PROCESSES=2``: two forked workers on one port
(SO_REUSEPORT), reached over several client connections so the kernel spreads them. Beside each
rate the server's CPU time per call is recorded (all its processes, from /proc): on a shared or
small machine the client competes for the same cores, and that figure is the steadier one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "keys"))

from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_testing.processes import start_service
from keys_world import AUDIENCE, ISSUER, PERSON_ID, LocalIdentity, new_kek, sha256

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results-keys.json"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
CALLS = int(os.environ.get("EGOV_BENCH_KEYS_CALLS", "600"))


@contextlib.contextmanager
def keys_workers(
    backend: str, workers: int, tmp: Path, jwks_url: str, database_url: str = ""
) -> Iterator[list]:
    env = {
        "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
        "EGOV_KEYS_IDENTITY_ISSUER": ISSUER,
        "EGOV_KEYS_IDENTITY_JWKS_URL": jwks_url,
        "EGOV_KEYS_TOKEN_AUDIENCES": f"{AUDIENCE},urn:egov:keys",
        "EGOV_KEYS_SIGN_CALLERS": "*",
        "EGOV_KEYS_DATABASE_URL": database_url or f"sqlite:///{tmp / f'{backend}-{workers}.db'}",
        "EGOV_KEYS_AUTO_BOOTSTRAP": "false",
        "EGOV_KEYS_PUBLIC_BASE_URL": "http://keys.bench",
        "EGOV_KEYS_LOG_LEVEL": "WARNING",
        "EGOV_KEYS_MAX_WORKERS": "8",
    }
    if backend == "pkcs11":
        tokens = tmp / f"tokens-{workers}-{os.urandom(4).hex()}"
        tokens.mkdir()
        conf = tokens.with_suffix(".conf")
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
        env.update(
            SOFTHSM2_CONF=str(conf),
            EGOV_KEYS_KEY_BACKEND="pkcs11",
            EGOV_KEYS_PKCS11_MODULE=SOFTHSM,
            EGOV_KEYS_PKCS11_TOKEN_LABEL="bench",
            EGOV_KEYS_PKCS11_PIN="5678",
        )
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                "bench",
                "--so-pin",
                "1234",
                "--pin",
                "5678",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
    subprocess.run(
        [sys.executable, "-m", "egov_keys", "bootstrap"],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )
    if workers > 1:
        env["EGOV_KEYS_PROCESSES"] = str(workers)
    with start_service("egov_keys", env=env) as service:
        yield service


def open_channels(service, count: int) -> list[grpc.Channel]:
    # Each its own TCP connection, so SO_REUSEPORT spreads them over the workers.
    return [
        grpc.insecure_channel(service.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]


def create(stub, identity: LocalIdentity) -> str:
    return stub.CreateCredential(
        keys_pb2.CreateCredentialRequest(
            idempotency_key=os.urandom(8).hex(),
            owner=party_pb2.PartyIdentifier(
                namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=PERSON_ID
            ),
            kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
            names=party_pb2.PartyNames(given_name_en="Bench", family_name_en="Mark"),
            authorization_proof=identity.person(),
        ),
        timeout=60,
    ).credential.credential_id


def authorize(stub, identity, credential_id: str, digests: list[bytes], token: str) -> str:
    request = keys_pb2.AuthorizeRequest(
        credential_id=credential_id,
        hashes=digests,
        hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
        num_signatures=len(digests),
        authorization_proof=token,
    )
    return stub.Authorize(request, timeout=60).sad


def sign(stub, credential_id: str, sad: str, digests: list[bytes]) -> None:
    request = keys_pb2.SignHashRequest(
        credential_id=credential_id,
        sad=sad,
        hashes=digests,
        hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
    )
    stub.SignHash(request, timeout=60)


def sign_hash_rate(service, workers: int, identity, batch: int = 1) -> tuple[float, float]:
    """SignHash calls per second (``batch`` digests each; signatures/s = rate * batch) and the
    server's CPU milliseconds per call."""
    channels = open_channels(service, 4 * workers)
    stubs = [keys_pb2_grpc.KeysServiceStub(c) for c in channels]
    credential_id = create(stubs[0], identity)
    token = identity.person()
    work = []
    calls = CALLS if batch == 1 else max(CALLS // batch, 20)
    for i in range(calls):
        digests = [sha256(f"bench {i}.{j}".encode()) for j in range(batch)]
        stub = stubs[i % len(stubs)]
        work.append((i, digests, authorize(stub, identity, credential_id, digests, token)))
    cpu = service.cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(8 * workers) as pool:
        list(pool.map(lambda w: sign(stubs[w[0] % len(stubs)], credential_id, w[2], w[1]), work))
    rate = calls / (time.perf_counter() - start)
    cpu_ms = (service.cpu_seconds() - cpu) * 1000 / calls
    for c in channels:
        c.close()
    return round(rate, 1), round(cpu_ms, 2)


@pytest.fixture(scope="module")
def identity() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def jwks_url(identity) -> Iterator[str]:
    with identity.serve_jwks() as url:
        yield url


@pytest.fixture(scope="module")
def results() -> Iterator[dict]:
    out: dict = {"machine": {"cpus": os.cpu_count()}, "calls_per_measurement": CALLS}
    yield out
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(out, indent=2))


@pytest.mark.parametrize("backend", ["software", "pkcs11"])
def test_bench_sign_hash_per_second(backend, identity, jwks_url, results, tmp_path):
    if backend == "pkcs11" and (
        shutil.which("softhsm2-util") is None or not Path(SOFTHSM).exists()
    ):
        pytest.skip("SoftHSM2 is not installed")
    for workers in (1, 2):
        with keys_workers(backend, workers, tmp_path, jwks_url) as service:
            label = f"{workers}_worker{'s' if workers > 1 else ''}"
            rate, cpu_ms = sign_hash_rate(service, workers, identity)
            results.setdefault("sign_hash_calls_per_second", {}).setdefault(backend, {})[label] = (
                rate
            )
            results.setdefault("server_cpu_ms_per_sign_hash", {}).setdefault(backend, {})[label] = (
                cpu_ms
            )
            rate, cpu_ms = sign_hash_rate(service, workers, identity, batch=20)
            results.setdefault("signatures_per_second_batches_of_20", {}).setdefault(backend, {})[
                label
            ] = round(rate * 20, 1)
            results.setdefault("server_cpu_ms_per_signature_batches_of_20", {}).setdefault(
                backend, {}
            )[label] = round(cpu_ms / 20, 3)


def test_bench_latency_ocsp_and_tsa(identity, jwks_url, results, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp

    with keys_workers("software", 1, tmp_path, jwks_url) as service:
        channel = service.open_channel()
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        credential_id = create(stub, identity)
        token = identity.person()
        latencies = []
        cpu = service.cpu_seconds()
        for i in range(200):
            digest = sha256(f"latency {i}".encode())
            start = time.perf_counter()
            sign(
                stub,
                credential_id,
                authorize(stub, identity, credential_id, [digest], token),
                [digest],
            )
            latencies.append((time.perf_counter() - start) * 1000)
        cpu_ms = (service.cpu_seconds() - cpu) * 1000 / len(latencies)
        latencies.sort()
        results["authorize_sign_hash_ms"] = {
            "p50": round(statistics.median(latencies), 2),
            "p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
            "server_cpu_ms": round(cpu_ms, 2),
        }
        credential = stub.GetCredential(
            keys_pb2.GetCredentialRequest(credential_id=credential_id)
        ).credential
        leaf = x509.load_der_x509_certificate(credential.certificate_chain[0])
        issuer = x509.load_der_x509_certificate(credential.certificate_chain[1])
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(leaf, issuer, hashes.SHA1())
            .build()
            .public_bytes(Encoding.DER)
        )
        tsq = subprocess.run(
            ["openssl", "ts", "-query", "-digest", "00" * 32, "-sha256", "-cert"],
            check=True,
            capture_output=True,
        ).stdout

        def rate(path: str, body: bytes, content_type: str, n: int = 400) -> tuple[float, float]:
            with httpx.Client(base_url=service.http_url, timeout=30) as client:

                def one(_: int) -> None:
                    r = client.post(path, content=body, headers={"content-type": content_type})
                    assert r.status_code == 200

                cpu = service.cpu_seconds()
                start = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(one, range(n)))
                per_second = round(n / (time.perf_counter() - start), 1)
                return per_second, round((service.cpu_seconds() - cpu) * 1000 / n, 2)

        results["ocsp_responses_per_second"], results["server_cpu_ms_per_ocsp_response"] = rate(
            "/ocsp", request, "application/ocsp-request"
        )
        results["tsa_tokens_per_second"], results["server_cpu_ms_per_tsa_token"] = rate(
            "/tsa", tsq, "application/timestamp-query"
        )
        channel.close()


@pytest.mark.parametrize("backend", ["software", "pkcs11"])
def test_bench_sign_hash_two_workers_on_postgres(
    backend, identity, jwks_url, results, tmp_path, postgres_url
):
    """Production shape: the SAD spend and audit append serialise in PostgreSQL, not SQLite."""
    if backend == "pkcs11" and (
        shutil.which("softhsm2-util") is None or not Path(SOFTHSM).exists()
    ):
        pytest.skip("SoftHSM2 is not installed")
    with keys_workers(backend, 2, tmp_path, jwks_url, postgres_url) as service:
        group = results.setdefault("postgres_2_workers", {}).setdefault(backend, {})
        rate, cpu_ms = sign_hash_rate(service, 2, identity)
        group["sign_hash_calls_per_second"] = rate
        group["server_cpu_ms_per_sign_hash"] = cpu_ms
        rate, cpu_ms = sign_hash_rate(service, 2, identity, batch=20)
        group["signatures_per_second_batches_of_20"] = round(rate * 20, 1)
        group["server_cpu_ms_per_signature_batches_of_20"] = round(cpu_ms / 20, 3)
