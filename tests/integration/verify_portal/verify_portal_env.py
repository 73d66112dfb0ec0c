"""Processes and peers for the verify portal's integration and browser tests.

- ``start_registry``: a real ``python -m egov_registry`` (SQLite, static issuer token).
- ``FakeSigning``: an in-test gRPC signing server whose VerifyDocument answers with a report
  the test chose per document hash (for tests that must not depend on the signing service's
  state of the day, and until it runs on its own).
- ``start_portal``: a real ``python -m egov_verify_portal`` on a free port, waited for by
  polling its ``/healthz`` with a deadline (``egov_testing.start_service`` with ``grpc=False``
  only waits for the port to open).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
from egov.signing.v1 import signing_pb2, signing_pb2_grpc
from egov.type.v1 import crypto_pb2
from egov_clients.registry import RegistryClient
from egov_common.errors import InvalidArgument
from egov_common.status import to_grpc_status
from egov_pki.identifiers import check_digit
from egov_testing.processes import ServiceProcess, start_service
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

AGENCY_NUMBER = "0994" + "00000001"
AGENCY = "TH-JUR:" + AGENCY_NUMBER + str(check_digit(AGENCY_NUMBER))
ISSUER_TOKEN = "verify-portal-test-issuer"
STATIC_TOKENS = {
    ISSUER_TOKEN: {"subject": "agency-backoffice", "scopes": ["registry:issue"], "agency": AGENCY}
}
SIGNER_TH = "สมชาย ใจดี"
SIGNER_ORG_TH = "กรมพัฒนาธุรกิจการค้า"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def passed_report(name: str = SIGNER_TH) -> signing_pb2.VerifyDocumentResponse:
    signed = datetime(2026, 11, 25, 4, 50, tzinfo=UTC)
    signature = signing_pb2.SignatureReport(
        field_name="Signature1",
        kind=signing_pb2.SIGNATURE_KIND_SIGNATURE,
        indication=signing_pb2.INDICATION_TOTAL_PASSED,
        reason="all checks passed",
        signer=signing_pb2.Signer(
            name=name,
            organization=SIGNER_ORG_TH,
            masked_identifier="NTRTH-0-9940-xxxxx-xx-1",
            issuer="egov Juristic Person CA",
        ),
        claimed_signing_time=_ts(signed),
        timestamp_time=_ts(signed),
        intact=True,
        valid=True,
        trusted=True,
        coverage=signing_pb2.COVERAGE_ENTIRE_FILE,
        modification_level=signing_pb2.MODIFICATION_LEVEL_LTA_UPDATES,
        docmdp_ok=True,
        pades_level=crypto_pb2.PADES_LEVEL_B_LTA,
        revocation_status=signing_pb2.REVOCATION_STATUS_GOOD,
    )
    return signing_pb2.VerifyDocumentResponse(
        report=signing_pb2.ValidationReport(
            indication=signing_pb2.INDICATION_TOTAL_PASSED,
            reason="all checks passed",
            signatures=[signature],
            validation_time=_ts(datetime.now(UTC)),
        ),
        etsi_xml=b'<?xml version="1.0"?><ValidationReport xmlns="http://uri.etsi.org/19102/v1.2.1#"/>',
    )


def failed_report(
    sub: int = signing_pb2.SUB_INDICATION_HASH_FAILURE,
) -> signing_pb2.VerifyDocumentResponse:
    response = passed_report()
    response.report.indication = signing_pb2.INDICATION_TOTAL_FAILED
    response.report.sub_indication = sub  # type: ignore[assignment]
    signature = response.report.signatures[0]
    signature.indication = signing_pb2.INDICATION_TOTAL_FAILED
    signature.sub_indication = sub  # type: ignore[assignment]
    signature.intact = sub != signing_pb2.SUB_INDICATION_HASH_FAILURE
    signature.reason = "the signed bytes do not match the signature"
    return response


class _SigningServicer(signing_pb2_grpc.SigningServiceServicer):
    def __init__(self, answers: dict[bytes, signing_pb2.VerifyDocumentResponse]) -> None:
        self.answers = answers
        self.calls = 0

    def VerifyDocument(
        self,
        request_iterator: Iterator[signing_pb2.VerifyDocumentRequest],
        context: grpc.ServicerContext,
    ) -> signing_pb2.VerifyDocumentResponse:
        self.calls += 1
        pdf = b"".join(r.chunk for r in request_iterator if r.WhichOneof("part") == "chunk")
        if b"%%EOF" not in pdf:
            context.abort_with_status(
                to_grpc_status(InvalidArgument("PDF_MALFORMED", "no end-of-file marker"))
            )
        answer = self.answers.get(sha256(pdf))
        if answer is None:
            return signing_pb2.VerifyDocumentResponse(
                report=signing_pb2.ValidationReport(indication=signing_pb2.INDICATION_INDETERMINATE)
            )
        return answer


class FakeSigning:
    """A signing gRPC server in this process; ``answers[sha256(pdf)]`` is what it reports."""

    def __init__(self) -> None:
        self.answers: dict[bytes, signing_pb2.VerifyDocumentResponse] = {}
        self.servicer = _SigningServicer(self.answers)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        signing_pb2_grpc.add_SigningServiceServicer_to_server(self.servicer, self.server)
        health_servicer = health.HealthServicer()
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"

    def __enter__(self) -> FakeSigning:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.stop(grace=0).wait()


@contextlib.contextmanager
def start_registry(data_dir: Path, **extra: str) -> Iterator[ServiceProcess]:
    env = {
        "EGOV_REGISTRY_DATABASE_URL": f"sqlite:///{data_dir / 'registry.db'}",
        "EGOV_REGISTRY_LOG_KEY_FILE": str(data_dir / "log-key.pem"),
        "EGOV_REGISTRY_STATIC_TOKENS": json.dumps(STATIC_TOKENS),
        "EGOV_REGISTRY_LOG_LEVEL": "WARNING",
        **extra,
    }
    with start_service("egov_registry", env, data_dir=data_dir, http=False) as registry:
        yield registry


def wait_http_ok(url: str, timeout: float = 30.0, process: ServiceProcess | None = None) -> None:
    """Poll ``url`` until it answers 200, with a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.returncode is not None:
            raise RuntimeError(f"portal exited: {process.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 in {timeout} s")
        time.sleep(0.05)  # poll interval; the deadline above bounds the wait


@contextlib.contextmanager
def start_portal(
    data_dir: Path,
    signing_address: str,
    registry_address: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServiceProcess]:
    variables = {
        "EGOV_SIGNING_ADDRESS": signing_address,
        "EGOV_REGISTRY_ADDRESS": registry_address,
        "EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY": "ab" * 32,
        "EGOV_VERIFY_PORTAL_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with start_service("egov_verify_portal", variables, data_dir=data_dir, grpc=False) as portal:
        wait_http_ok(portal.http_url + "/healthz", process=portal)
        yield portal


@dataclass
class PortalStack:
    """A running portal with its registry (real) and signing (fake) peers."""

    url: str
    signing: FakeSigning
    registry: ServiceProcess
    portal: ServiceProcess
    issuer: RegistryClient


@contextlib.contextmanager
def portal_stack(base: Path, max_upload_bytes: int) -> Iterator[PortalStack]:
    """Fake signing + real registry + real portal, and an issuer client of the registry."""
    with (
        FakeSigning() as signing,
        start_registry(base / "registry") as registry,
        start_portal(
            base / "portal",
            signing.address,
            registry.grpc_address,
            {"EGOV_VERIFY_PORTAL_MAX_UPLOAD_BYTES": str(max_upload_bytes)},
        ) as portal,
        RegistryClient(registry.grpc_address, token=ISSUER_TOKEN) as issuer,
    ):
        yield PortalStack(portal.http_url, signing, registry, portal, issuer)
