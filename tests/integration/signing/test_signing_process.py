"""signing as a real process, with keys as a real process: sign over gRPC at every level,
check the result with independent tools, verify over gRPC, refuse bad input with reasons."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.signing.v1 import signing_pb2 as pb
from egov.type.v1 import party_pb2
from egov_clients.signing import SigningClient, Stamp
from egov_common.errors import EgovError
from egov_common.status import error_info
from egov_testing.corpus import corpus_dir
from egov_testing.processes import start_service
from keys_world import PERSON_ID
from signing_testkit import create_person_credential, make_pdf, signing_env

pytestmark = pytest.mark.slow

# the shared third-party corpus (outside the repository); EGOV_TEST_PDF_CORPUS overrides
CORPUS = corpus_dir()


@pytest.fixture(scope="module")
def keys_stub(keys_process):  # type: ignore[no-untyped-def]
    channel = keys_process.open_channel()
    yield keys_pb2_grpc.KeysServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def credential(keys_stub, identity) -> keys_pb2.Credential:  # type: ignore[no-untyped-def]
    return create_person_credential(keys_stub, identity, "signing-it-1", PERSON_ID)


@pytest.fixture(scope="module")
def client(signing_process):  # type: ignore[no-untyped-def]
    with SigningClient(signing_process.grpc_address) as c:
        yield c


@pytest.fixture(scope="module")
def signed(client, credential, identity) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """One document per level, signed once for the whole module."""
    out = {}
    for level in ("B-B", "B-T", "B-LT", "B-LTA"):
        result = client.sign_document(
            make_pdf(pages=2),
            credential_id=credential.credential_id,
            authorization_proof=identity.person(),
            level=level,
            reason="ทดสอบระบบ",
            stamp=Stamp(language="th") if level == "B-LTA" else None,
        )
        assert result.result.level
        out[level] = result.pdf
    return out


@pytest.mark.parametrize(
    ("level", "expected"),
    [("B-LT", "PADES_LEVEL_B_LT"), ("B-LTA", "PADES_LEVEL_B_LTA")],
)
def test_long_term_signatures_pass_over_grpc_in_hard_fail_mode(
    client, signed, level: str, expected: str
) -> None:
    reply = client.verify_document(signed[level], language="en", skip_registry=True)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary
    first = reply.report.signatures[0]
    from egov.type.v1 import crypto_pb2

    assert crypto_pb2.PadesLevel.Name(first.pades_level) == expected
    assert first.signer.masked_identifier.endswith("-xxxxx-xx-" + PERSON_ID[-1])
    assert PERSON_ID not in reply.summary


@pytest.mark.parametrize("level", ["B-B", "B-T"])
def test_short_term_signatures_pass_with_on_line_revocation_from_keys(
    client, signed, level: str
) -> None:
    reply = client.verify_document(signed[level], skip_registry=True)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary


def test_pyhanko_directly_agrees_with_embedded_revocation(signed, keys_stub) -> None:
    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    info = keys_stub.GetTrustServiceInfo(keys_pb2.GetTrustServiceInfoRequest(), timeout=10)
    roots = [
        x509.Certificate.load(c.certificate_der) for c in info.certificates if c.role == "root"
    ]
    reader = PdfFileReader(io.BytesIO(signed["B-LT"]))
    vc = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": roots, "allow_fetching": False, "revocation_mode": "hard-fail"}
    )
    status = validate_pdf_signature(reader.embedded_signatures[0], vc)
    assert status.bottom_line


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf absent")
def test_qpdf_check_passes(signed, tmp_path: Path) -> None:
    for level, pdf in signed.items():
        path = tmp_path / f"{level}.pdf"
        path.write_bytes(pdf)
        subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)


@pytest.mark.skipif(
    shutil.which("pdfsig") is None or shutil.which("certutil") is None, reason="tools absent"
)
@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
def test_pdfsig_valid_and_trusted(signed, keys_stub, tmp_path: Path, level: str) -> None:
    info = keys_stub.GetTrustServiceInfo(keys_pb2.GetTrustServiceInfoRequest(), timeout=10)
    root = next(c.certificate_der for c in info.certificates if c.role == "root")
    (tmp_path / "root.der").write_bytes(root)
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{db}",
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-i",
            str(tmp_path / "root.der"),
        ],
        check=True,
    )
    (tmp_path / "s.pdf").write_bytes(signed[level])
    out = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{db}", str(tmp_path / "s.pdf")],
        capture_output=True,
        text=True,
    ).stdout.split("Signature #2")[0]
    assert "Signature is Valid" in out
    assert "Certificate is Trusted" in out


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler absent")
def test_thai_stamp_text_extracts_exactly(signed) -> None:
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=signed["B-LTA"], capture_output=True, check=True
    ).stdout.decode()
    # keys puts the English name in the certificate's CN; the Thai labels must come back exact
    assert "ลงนามโดย Somchai Jaidee" in text
    assert "เหตุผล ทดสอบระบบ" in text
    assert "วันที่ " in text and "25" in text


def test_revoked_signer_fails(client, keys_stub, identity) -> None:  # type: ignore[no-untyped-def]
    fresh = create_person_credential(keys_stub, identity, "signing-it-revoked", PERSON_ID)
    pdf = client.sign_document(
        make_pdf(),
        credential_id=fresh.credential_id,
        authorization_proof=identity.person(),
        level="B-B",
    ).pdf
    keys_stub.RevokeCredential(
        keys_pb2.RevokeCredentialRequest(
            credential_id=fresh.credential_id,
            reason=keys_pb2.CertificateRevocationReason.Value(
                keys_pb2.CertificateRevocationReason.Name(1)
            ),
            authorization_proof=identity.person(),
        ),
        timeout=30,
    )
    reply = client.verify_document(pdf, skip_registry=True)
    # EN 319 102-1: revoked, and no proof the signature existed before the revocation
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_INDETERMINATE"
    assert pb.SubIndication.Name(reply.report.sub_indication) == "SUB_INDICATION_REVOKED_NO_POE"
    sig = reply.report.signatures[0]
    assert pb.RevocationStatus.Name(sig.revocation_status) == "REVOCATION_STATUS_REVOKED"
    assert sig.HasField("revoked_at") and sig.revocation_reason


def test_a_signature_time_stamped_before_its_signer_was_revoked_passes(  # type: ignore[no-untyped-def]
    client, keys_stub, identity
) -> None:
    fresh = create_person_credential(keys_stub, identity, "signing-it-revoked-later", PERSON_ID)
    pdf = client.sign_document(
        make_pdf(),
        credential_id=fresh.credential_id,
        authorization_proof=identity.person(),
        level="B-T",
    ).pdf
    # revocation times have whole seconds: revoke in a later second than the time-stamp's
    stamped = datetime.now(UTC).replace(microsecond=0)
    deadline = time.monotonic() + 5
    while datetime.now(UTC).replace(microsecond=0) <= stamped and time.monotonic() < deadline:
        time.sleep(0.05)
    keys_stub.RevokeCredential(
        keys_pb2.RevokeCredentialRequest(
            credential_id=fresh.credential_id,
            reason=keys_pb2.CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE,
            authorization_proof=identity.person(),
        ),
        timeout=30,
    )
    reply = client.verify_document(pdf, skip_registry=True)
    # EN 319 102-1 5.5: the trusted signature time-stamp precedes the revocation (keys' OCSP
    # answer, fetched while verifying)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary
    sig = reply.report.signatures[0]
    assert pb.RevocationStatus.Name(sig.revocation_status) == "REVOCATION_STATUS_REVOKED"
    assert "proof of existence" in sig.reason, sig.reason


def test_corpus_file_verifies_over_grpc_at_its_validation_time(client) -> None:
    if not CORPUS.exists():
        pytest.skip("shared/testdata corpus absent")
    entry = next(
        e
        for e in json.loads((CORPUS / "manifest.json").read_text())
        if e["file"] == "pades-lta-dss-indirect-arrs-test.pdf"
    )
    reply = client.verify_document(
        (CORPUS / "pdf" / entry["file"]).read_bytes(),
        include_etsi_xml=True,
        skip_registry=True,
        validation_time=datetime.fromisoformat(entry["validation_time"].replace("Z", "+00:00")),
    )
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED"
    assert b"urn:etsi:019102:mainindication:total-passed" in reply.etsi_xml


def _status(err: EgovError) -> tuple[str, str]:
    return err.code.value, err.reason


def test_non_pdf_is_invalid_argument_with_reason(client) -> None:
    with pytest.raises(EgovError) as err:
        client.verify_document(b"hello, not a pdf")
    assert _status(err.value) == ("INVALID_ARGUMENT", "NOT_A_PDF")


def test_upload_over_the_limit_is_refused_while_streaming(client) -> None:
    with pytest.raises(EgovError) as err:
        client.verify_document(b"%PDF-1.7\n" + b"0" * (4 * 1024 * 1024))
    assert _status(err.value) == ("INVALID_ARGUMENT", "PDF_TOO_LARGE")


def test_truncated_pdf_is_malformed(client, signed) -> None:
    with pytest.raises(EgovError) as err:
        client.verify_document(signed["B-B"][:5000])
    assert _status(err.value) == ("INVALID_ARGUMENT", "PDF_MALFORMED")


def test_sign_without_level_is_refused_with_reason(signing_process, credential) -> None:
    from egov.signing.v1 import signing_pb2_grpc

    channel = grpc.insecure_channel(signing_process.grpc_address)
    stub = signing_pb2_grpc.SigningServiceStub(channel)
    requests = iter(
        [
            pb.SignDocumentRequest(options=pb.SignOptions(credential_id=credential.credential_id)),
            pb.SignDocumentRequest(chunk=make_pdf()),
        ]
    )
    with pytest.raises(grpc.RpcError) as err:
        list(stub.SignDocument(requests, timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err.value)
    assert info is not None and info.reason == "LEVEL_MISSING"
    channel.close()


def test_keys_refusal_reaches_the_caller_with_its_reason(client, credential) -> None:
    with pytest.raises(EgovError) as err:
        client.sign_document(
            make_pdf(),
            credential_id=credential.credential_id,
            authorization_proof="not-a-token",
            level="B-B",
        )
    assert err.value.code.value == "UNAUTHENTICATED"
    assert err.value.reason.startswith("TOKEN_")


def test_agency_e_seal_is_authorised_by_the_callers_bearer_token(
    signing_process, keys_stub, identity
) -> None:
    """An e-seal has no owner's ID token: signing forwards the agency client's bearer token to
    keys.Authorize as the proof."""
    from keys_world import AGENCY_ID

    agency_token = identity.agency_client()
    seal = keys_stub.CreateCredential(
        keys_pb2.CreateCredentialRequest(
            idempotency_key="signing-it-seal",
            owner=party_pb2.PartyIdentifier(
                namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value=AGENCY_ID
            ),
            kind=keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL,
            names=party_pb2.PartyNames(
                organization_name_th="กรมทดสอบ", organization_name_en="Department of Testing"
            ),
            authorization_proof=agency_token,
        ),
        timeout=30,
    ).credential
    with SigningClient(signing_process.grpc_address, token=agency_token) as agency:
        signed = agency.sign_document(
            make_pdf(),
            credential_id=seal.credential_id,
            level="B-LTA",
            stamp=Stamp(language="th"),
            reason="ตราประทับอิเล็กทรอนิกส์",
        )
        reply = agency.verify_document(signed.pdf, skip_registry=True)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary


def test_only_digests_cross_to_the_real_keys_service(keys_process, credential, identity) -> None:  # type: ignore[no-untyped-def]
    """The same adapter signing uses, recorded: what goes to keys is 32-byte digests only."""
    from egov_signing.adapters.keys import GrpcKeysPort
    from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
    from signing_testkit import signing_token

    sent: list[tuple[str, tuple[bytes, ...]]] = []

    class Recording(GrpcKeysPort):
        def authorize(self, credential_id, hashes, **kw):  # type: ignore[no-untyped-def]
            sent.append(("authorize", tuple(hashes)))
            return super().authorize(credential_id, hashes, **kw)

        def sign_hash(self, credential_id, sad, hashes, **kw):  # type: ignore[no-untyped-def]
            sent.append(("sign_hash", tuple(hashes)))
            return super().sign_hash(credential_id, sad, hashes, **kw)

    channel = keys_process.open_channel()
    try:
        port = Recording(channel, service_token=signing_token(identity))
        pdf = make_pdf(text="confidential contract")
        signed = PdfSigningService(port).sign(
            pdf,
            SignOptions(credential.credential_id, Level.B_B, authorization_proof=identity.person()),
        )
    finally:
        channel.close()
    assert [kind for kind, _ in sent] == ["authorize", "sign_hash"]
    for _, hashes in sent:
        assert all(len(h) == 32 and h not in pdf for h in hashes)
    assert b"confidential contract" in signed.pdf


def test_two_worker_processes_sign_each_over_channels_of_their_own(
    keys_process, identity, credential
) -> None:  # type: ignore[no-untyped-def]
    """EGOV_SIGNING_PROCESSES=2: every worker opens its own channels to keys after the fork
    (a channel made before it would not work in the child), and both sign."""
    env = {**signing_env(keys_process.grpc_address, identity), "EGOV_SIGNING_PROCESSES": "2"}
    with start_service("egov_signing", env=env, http=False) as service:
        for _ in range(12):  # connections of their own: the kernel spreads them over the workers
            channel = grpc.insecure_channel(
                service.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            with channel, SigningClient(channel) as client:
                signed = client.sign_document(
                    make_pdf(pages=1),
                    credential_id=credential.credential_id,
                    authorization_proof=identity.person(),
                    level="B-T",
                )
                reply = client.verify_document(signed.pdf, skip_registry=True)
                indication = pb.Indication.Name(reply.report.indication)
                assert indication == "INDICATION_TOTAL_PASSED", reply.summary
        workers = {
            json.loads(line).get("worker")
            for line in service.log_tail(1_000_000).splitlines()
            if line.startswith("{") and "SignDocument" in line
        }
        assert workers == {0, 1}
        assert service.stop() == 0
