"""Signing benchmarks (``make bench``; never collected by ``make test``). Figures are reported in
``bench/results-signing.json``, never asserted.

In one run on the same machine:

- pyHanko in process, stock flow (``SimpleSigner.load`` re-reads the PEM key and certificate,
  ``sign_pdf`` sizes the signature with a dry run, so the document is built twice), P-256 like
  our credentials, versus our SignDocument end to end over gRPC (client -> signing -> keys in
  separate processes: GetCredential cached, Authorize + SignHash per document), 1-page PDF,
  B-B and B-LTA, sequential and with 2 workers;
- verification in process (DocumentVerifier) versus VerifyDocument over gRPC;
- a 10 MB PDF signed (B-B) and verified over gRPC: time and the signing process's peak RSS
  growth (VmHWM) against the file size.

Both sides also report CPU per document: the bench process's during each side's rounds
(``bench_process_cpu_ms_each``: pyHanko's, or our client's), and for our side the signing and
keys processes' (``ours_cpu_ms_per_document``). In a sequential run our three processes work
one after the other, so their CPU adds up to at least our time per document; the CPU ratios
(``cpu_ratio_*``) move much less than wall time when other people load the machine.

Each pair is measured in alternating rounds (``EGOV_BENCH_SIGNING_ROUNDS``, default 3) and the
best round of each side is kept, since the machine is shared.

Issue 7 targets: B-B throughput >= 2.0x pyHanko's, B-LTA time <= 1.0x, verification <= 1.2x,
peak memory on the 10 MB PDF <= 3x its size.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "keys"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "signing"))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov_clients.signing import SigningClient
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.verification import DocumentVerifier, TrustAnchors
from egov_testing.processes import ServiceProcess, start_service
from keys_world import AUDIENCE, ISSUER, PERSON_ID, LocalIdentity, new_kek
from signing_testkit import create_person_credential, make_pdf, signing_token

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results-signing.json"
N_BB = int(os.environ.get("EGOV_BENCH_SIGNING_BB", "72"))
N_LTA = int(os.environ.get("EGOV_BENCH_SIGNING_LTA", "8"))
N_VERIFY = int(os.environ.get("EGOV_BENCH_SIGNING_VERIFY", "20"))
ROUNDS = int(os.environ.get("EGOV_BENCH_SIGNING_ROUNDS", "3"))

_results: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def write_results() -> Iterator[None]:
    yield
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    _results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    _results["rounds"] = ROUNDS
    _results["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.write_text(json.dumps(_results, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def identity() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def keys(identity: LocalIdentity) -> Iterator[ServiceProcess]:
    with identity.serve_jwks() as jwks:
        env = {
            "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
            "EGOV_KEYS_IDENTITY_ISSUER": ISSUER,
            "EGOV_KEYS_IDENTITY_JWKS_URL": jwks,
            "EGOV_KEYS_TOKEN_AUDIENCES": f"{AUDIENCE},urn:egov:keys",
            "EGOV_KEYS_SIGN_CALLERS": "client:signing",  # no mTLS in these tests
            "EGOV_KEYS_LOG_LEVEL": "WARNING",
        }
        with start_service("egov_keys", env=env) as service:
            yield service


def _signing_env(keys: ServiceProcess, identity: LocalIdentity) -> dict[str, str]:
    return {
        "EGOV_KEYS_ADDRESS": keys.grpc_address,
        "EGOV_REGISTRY_ADDRESS": "127.0.0.1:9",
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity, 7200),
        "EGOV_SIGNING_LOG_LEVEL": "WARNING",
        "EGOV_SIGNING_MAX_DOCUMENT_BYTES": str(64 * 1024 * 1024),
        "EGOV_SIGNING_MAX_MESSAGE_BYTES": str(64 * 1024 * 1024),
    }


@pytest.fixture(scope="module")
def signing(keys: ServiceProcess, identity: LocalIdentity) -> Iterator[ServiceProcess]:
    with start_service("egov_signing", env=_signing_env(keys, identity), http=False) as service:
        yield service


@pytest.fixture(scope="module")
def credential_id(keys: ServiceProcess, identity: LocalIdentity) -> str:
    channel = keys.open_channel()
    try:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        return str(
            create_person_credential(stub, identity, "bench-signing", PERSON_ID).credential_id
        )
    finally:
        channel.close()


@pytest.fixture(scope="module")
def trust_info(keys: ServiceProcess) -> keys_pb2.GetTrustServiceInfoResponse:
    channel = keys.open_channel()
    try:
        return keys_pb2_grpc.KeysServiceStub(channel).GetTrustServiceInfo(
            keys_pb2.GetTrustServiceInfoRequest(), timeout=10
        )
    finally:
        channel.close()


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A P-256 key, its certificate and a root on disk, as pyHanko's stock flow reads them
    (no revocation URLs: the baseline's B-LTA pays only its time-stamp round trips)."""
    folder = tmp_path_factory.mktemp("pyhanko")
    now = dt.datetime.now(dt.UTC)

    def cert(
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        issuer_key: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
            .add_extension(
                x509.KeyUsage(not ca, not ca, False, False, False, ca, ca, False, False), True
            )
            .sign(issuer_key, hashes.SHA256())
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    root = cert("Bench Root", root_key, "Bench Root", root_key, True)
    leaf = cert("Bench Signer", key, "Bench Root", root_key, False)
    paths = folder / "key.pem", folder / "cert.pem", folder / "root.pem"
    paths[0].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return str(paths[0]), str(paths[1]), str(paths[2])


def _timed(fn: Callable[[int], Any], n: int, workers: int) -> float:
    start = time.perf_counter()
    if workers == 1:
        for i in range(n):
            fn(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fn, range(n)))
    return time.perf_counter() - start


def _pair(
    a: Callable[[int], Any], b: Callable[[int], Any], n: int, workers: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Both measured in alternating rounds, best round each: the machine is shared, and a
    burst of someone else's load should not land on one side only."""
    a(-1)  # warm up (imports, caches, first connection)
    b(-1)
    best_a = best_b = float("inf")
    cpu_a = cpu_b = 0.0  # this (the bench) process's CPU during each side's rounds
    for _ in range(ROUNDS):
        start = time.process_time()
        best_a = min(best_a, _timed(a, n, workers))
        cpu_a += time.process_time() - start
        start = time.process_time()
        best_b = min(best_b, _timed(b, n, workers))
        cpu_b += time.process_time() - start
    figures_a, figures_b = _figures(best_a, n), _figures(best_b, n)
    figures_a["bench_process_cpu_ms_each"] = round(1000 * cpu_a / (n * ROUNDS), 1)
    figures_b["bench_process_cpu_ms_each"] = round(1000 * cpu_b / (n * ROUNDS), 1)
    return figures_a, figures_b


def _figures(elapsed: float, n: int) -> dict[str, float]:
    return {
        "n": n,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 2),
        "ms_each": round(1000 * elapsed / n, 1),
    }


def _pyhanko_stock(
    pem_files: tuple[str, str, str], level: str, tsa_url: str, tsa_roots: list[bytes]
) -> Callable[[int], bytes]:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko_certvalidator import ValidationContext

    tsa_anchors = [asn1_x509.Certificate.load(der) for der in tsa_roots]
    pdf = make_pdf()

    def sign(_: int) -> bytes:
        signer = signers.SimpleSigner.load(
            pem_files[0], pem_files[1], ca_chain_files=(pem_files[2],)
        )
        assert signer is not None
        lta = level == "B-LTA"
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            subfilter=SigSeedSubFilter.PADES,
            embed_validation_info=lta,
            use_pades_lta=lta,
            validation_context=(
                ValidationContext(
                    trust_roots=[load_cert_from_pemder(pem_files[2]), *tsa_anchors],
                    allow_fetching=True,
                )
                if lta
                else None
            ),
        )
        out = signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)),
            meta,
            signer=signer,
            timestamper=HTTPTimeStamper(tsa_url) if lta else None,
        )
        return out.getvalue()

    return sign


def _ours(
    signing: ServiceProcess, identity: LocalIdentity, credential_id: str, level: str
) -> Callable[[int], bytes]:
    client = SigningClient(signing.grpc_address)
    pdf = make_pdf()

    def sign(_: int) -> bytes:
        return client.sign_document(
            pdf, credential_id=credential_id, authorization_proof=identity.person(), level=level
        ).pdf

    return sign


@pytest.mark.parametrize("level", ["B-B", "B-LTA"])
@pytest.mark.parametrize("workers", [1, 2])
def test_sign_one_page_ours_vs_pyhanko(
    keys, signing, identity, credential_id, pem_files, trust_info, level: str, workers: int
) -> None:
    n = N_BB if level == "B-B" else N_LTA
    roots = [c.certificate_der for c in trust_info.certificates if c.role == "root"]
    # where our side's time goes: the services are idle during pyHanko's rounds, so their CPU
    # over the whole pair is the CPU of our documents (the warm-up one included)
    cpu_before = {name: p.cpu_seconds() for name, p in (("signing", signing), ("keys", keys))}
    baseline, ours = _pair(
        _pyhanko_stock(pem_files, level, trust_info.tsa_url, roots),
        _ours(signing, identity, credential_id, level),
        n,
        workers,
    )
    documents = n * ROUNDS + 1
    cpu = {
        name: round(1000 * (p.cpu_seconds() - cpu_before[name]) / documents, 1)
        for name, p in (("signing", signing), ("keys", keys))
    }
    cpu["client"] = ours["bench_process_cpu_ms_each"]
    _results[f"sign_{level}_workers{workers}"] = {
        "pyhanko_in_process": baseline,
        "ours_grpc": ours,
        "throughput_ratio_ours_over_pyhanko": round(ours["per_second"] / baseline["per_second"], 2),
        "time_ratio_ours_over_pyhanko": round(ours["ms_each"] / baseline["ms_each"], 2),
        "ours_cpu_ms_per_document": cpu,
        # less sensitive to other people's load than wall time: CPU spent per document by
        # pyHanko in process versus by our three processes together
        "cpu_ratio_pyhanko_over_ours": round(
            baseline["bench_process_cpu_ms_each"] / sum(cpu.values()), 2
        ),
    }


def test_verify_in_process_vs_grpc(signing, identity, credential_id, trust_info) -> None:
    pdf = _ours(signing, identity, credential_id, "B-LTA")(0)
    roots = [c.certificate_der for c in trust_info.certificates if c.role == "root"]
    verifier = DocumentVerifier(TrustAnchors(roots), limits=DocumentLimits())
    client = SigningClient(signing.grpc_address)
    signing_cpu = signing.cpu_seconds()
    local, remote = _pair(
        lambda _: verifier.verify(pdf),
        lambda _: client.verify_document(pdf, skip_registry=True),
        N_VERIFY,
        1,
    )
    service_cpu_ms = 1000 * (signing.cpu_seconds() - signing_cpu) / (N_VERIFY * ROUNDS + 1)
    assert verifier.verify(pdf).indication.value == "TOTAL_PASSED"
    _results["verify_B-LTA"] = {
        "in_process": local,
        "grpc": remote,
        "time_ratio_grpc_over_in_process": round(remote["ms_each"] / local["ms_each"], 2),
        "grpc_signing_process_cpu_ms_each": round(service_cpu_ms, 1),
        # client and service CPU per verification over gRPC versus in process
        "cpu_ratio_grpc_over_in_process": round(
            (remote["bench_process_cpu_ms_each"] + service_cpu_ms)
            / local["bench_process_cpu_ms_each"],
            2,
        ),
    }


def _big_pdf(size: int) -> bytes:
    """A 1-page PDF padded to ``size`` bytes with an incompressible image XObject."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    noise = os.urandom(size)
    base = make_pdf()
    writer = IncrementalPdfFileWriter(io.BytesIO(base))
    image = generic.StreamObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/XObject"),
            generic.NameObject("/Subtype"): generic.NameObject("/Image"),
            generic.NameObject("/Width"): generic.NumberObject(1024),
            generic.NameObject("/Height"): generic.NumberObject(size // 3072),
            generic.NameObject("/ColorSpace"): generic.NameObject("/DeviceRGB"),
            generic.NameObject("/BitsPerComponent"): generic.NumberObject(8),
        },
        stream_data=noise[: 3072 * (size // 3072)],
    )
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    page["/Resources"]["/XObject"] = generic.DictionaryObject(
        {generic.NameObject("/Im1"): writer.add_object(image)}
    )
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def test_ten_megabyte_pdf_time_and_peak_memory(keys, identity, credential_id) -> None:
    pdf = _big_pdf(10 * 1024 * 1024)
    with start_service("egov_signing", env=_signing_env(keys, identity), http=False) as signing:
        client = SigningClient(signing.grpc_address)
        client.verify_document(make_pdf(), skip_registry=True)  # warm up imports
        baseline = _vm(signing.pid, "VmRSS")
        start = time.perf_counter()
        signed = client.sign_document(
            pdf, credential_id=credential_id, authorization_proof=identity.person(), level="B-B"
        ).pdf
        sign_seconds = time.perf_counter() - start
        after_sign = _vm(signing.pid, "VmHWM")
        start = time.perf_counter()
        client.verify_document(signed, skip_registry=True)
        verify_seconds = time.perf_counter() - start
        peak = _vm(signing.pid, "VmHWM")
    _results["pdf_10MB"] = {
        "size_bytes": len(pdf),
        "sign_B-B_seconds": round(sign_seconds, 3),
        "verify_seconds": round(verify_seconds, 3),
        "rss_before_bytes": baseline,
        "peak_rss_growth_sign_bytes": after_sign - baseline,
        "peak_rss_growth_bytes": peak - baseline,
        "peak_growth_over_file_size": round((peak - baseline) / len(pdf), 2),
    }
