"""Large uploads over gRPC: spooled to an unnamed file in signing's private directory, signed in
place and streamed back; nothing of the document stays open or on disk once the call ends,
whether it succeeded, was refused, cancelled or ran out of time."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.signing.v1 import signing_pb2 as pb
from egov.signing.v1 import signing_pb2_grpc
from egov_clients.signing import SigningClient, sign_options
from egov_common.errors import EgovError
from egov_testing.processes import ServiceProcess, start_service
from keys_world import PERSON_ID, LocalIdentity
from signing_testkit import create_person_credential, make_pdf, signing_token

pytestmark = pytest.mark.slow

SPOOL_MEMORY = 64 * 1024


@pytest.fixture(scope="module")
def spool_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def signing(
    keys_process: ServiceProcess, identity: LocalIdentity, spool_parent: Path
) -> Iterator[ServiceProcess]:
    env = {
        "EGOV_KEYS_ADDRESS": keys_process.grpc_address,
        "EGOV_REGISTRY_ADDRESS": "127.0.0.1:9",
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity),
        "EGOV_SIGNING_MAX_DOCUMENT_BYTES": str(3 * 1024 * 1024),
        "EGOV_SIGNING_SPOOL_MEMORY_BYTES": str(SPOOL_MEMORY),
        "EGOV_SIGNING_SPOOL_DIR": str(spool_parent),
    }
    with start_service("egov_signing", env=env, http=False) as service:
        yield service


@pytest.fixture(scope="module")
def credential(keys_process: ServiceProcess, identity: LocalIdentity) -> keys_pb2.Credential:
    channel = keys_process.open_channel()
    try:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        return create_person_credential(stub, identity, "signing-large-1", PERSON_ID)
    finally:
        channel.close()


def _spool_files(signing: ServiceProcess, spool_parent: Path) -> list[str]:
    """Descriptors of the signing process that point into its spool directory."""
    found = []
    fd_dir = Path(f"/proc/{signing.pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith(str(spool_parent)):
            found.append(target)
    return found


def _wait_until(condition, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _nothing_left(signing: ServiceProcess, spool_parent: Path) -> bool:
    names = [p for p in spool_parent.rglob("*") if p.is_file()]
    return not names and not _spool_files(signing, spool_parent)


def test_large_document_is_signed_and_verified_through_the_spool(
    signing: ServiceProcess, credential, identity: LocalIdentity, spool_parent: Path
) -> None:
    original = make_pdf(image_bytes=1_500_000)
    with SigningClient(signing.grpc_address) as client:
        signed = client.sign_document(
            original,
            credential_id=credential.credential_id,
            authorization_proof=identity.person(),
            level="B-LTA",
        )
        assert signed.pdf.startswith(original)
        assert signed.result.size_bytes == len(signed.pdf)
        reply = client.verify_document(signed.pdf, skip_registry=True)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary
    assert reply.report.sha256 == signed.result.sha256
    # the process made its private directory (0700) under the configured one, and it is empty
    private = list(spool_parent.iterdir())
    assert len(private) == 1 and oct(private[0].stat().st_mode & 0o777) == "0o700"
    assert _wait_until(lambda: _nothing_left(signing, spool_parent))


def test_refused_upload_leaves_nothing_behind(
    signing: ServiceProcess, credential, identity: LocalIdentity, spool_parent: Path
) -> None:
    with SigningClient(signing.grpc_address) as client:
        with pytest.raises(EgovError) as too_large:
            client.verify_document(b"%PDF-1.7\n" + b"0" * (4 * 1024 * 1024))
        with pytest.raises(EgovError) as not_pdf:
            client.sign_document(
                b"GIF89a" + os.urandom(200_000),
                credential_id=credential.credential_id,
                authorization_proof=identity.person(),
                level="B-B",
            )
    assert too_large.value.reason == "PDF_TOO_LARGE"
    assert not_pdf.value.reason == "NOT_A_PDF"
    assert _wait_until(lambda: _nothing_left(signing, spool_parent))


def _stalled_upload(
    credential_id: str, proof: str, release: threading.Event
) -> Iterator[pb.SignDocumentRequest]:
    yield pb.SignDocumentRequest(
        options=sign_options(credential_id=credential_id, authorization_proof=proof, level="B-B")
    )
    yield pb.SignDocumentRequest(chunk=make_pdf(image_bytes=300_000))  # past the memory spool
    release.wait(30)


@pytest.mark.parametrize("ending", ["cancelled", "deadline"])
def test_interrupted_upload_leaves_nothing_behind(
    signing: ServiceProcess, credential, identity: LocalIdentity, spool_parent: Path, ending: str
) -> None:
    release = threading.Event()
    channel = grpc.insecure_channel(signing.grpc_address)
    try:
        stub = signing_pb2_grpc.SigningServiceStub(channel)
        call = stub.SignDocument(
            _stalled_upload(credential.credential_id, identity.person(), release),
            timeout=30 if ending == "cancelled" else 2,
        )
        # the upload is on disk (spooled) while the call is open
        assert _wait_until(lambda: bool(_spool_files(signing, spool_parent)))
        if ending == "cancelled":
            call.cancel()
        with pytest.raises(grpc.RpcError) as err:
            list(call)
        expected = "CANCELLED" if ending == "cancelled" else "DEADLINE_EXCEEDED"
        assert err.value.code().name == expected
        assert _wait_until(lambda: _nothing_left(signing, spool_parent))
    finally:
        release.set()
        channel.close()
