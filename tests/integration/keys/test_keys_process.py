"""The keys service as a real process: gRPC contract, and CRL / OCSP / TSA over HTTP checked
by tools nobody here wrote (OpenSSL, pyHanko's certificate validator)."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.type.v1 import party_pb2
from egov_common.status import from_rpc_error
from egov_keys.domain.algorithms import HashAlgorithm, SignatureScheme, verify_digest_signature
from keys_grpc import authorize, create_person_credential, sign_request, signing_metadata
from keys_world import PERSON_ID, sha256

openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@pytest.fixture(scope="module")
def stub(keys_process):
    channel = keys_process.open_channel()
    yield keys_pb2_grpc.KeysServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def as_signing(identity):
    return signing_metadata(identity)


create = create_person_credential


def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = from_rpc_error(info.value)
    return info.value.code(), error.reason


def test_sign_hash_over_grpc_burns_the_sad(stub, identity, as_signing):
    credential = create(stub, identity, "grpc-1")
    assert credential.status == keys_pb2.CREDENTIAL_STATUS_ACTIVE
    assert len(credential.certificate_chain) == 3
    hashes = [sha256(b"page-1"), sha256(b"page-2")]
    sad = authorize(stub, identity, credential.credential_id, hashes)
    response = stub.SignHash(
        sign_request(credential.credential_id, sad, hashes), metadata=as_signing, timeout=30
    )
    public = x509.load_der_x509_certificate(credential.certificate_chain[0]).public_key()
    for digest, signature in zip(hashes, response.signatures, strict=True):
        verify_digest_signature(
            public, signature, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA
        )
    assert status_of(
        lambda: stub.SignHash(
            sign_request(credential.credential_id, sad, hashes), metadata=as_signing, timeout=30
        )
    ) == (grpc.StatusCode.UNAUTHENTICATED, "SAD_ALREADY_USED")


def test_sign_hash_refusals_carry_status_and_reason(stub, identity, as_signing):
    credential = create(stub, identity, "grpc-2")
    hashes = [sha256(b"x")]
    sad = authorize(stub, identity, credential.credential_id, hashes)
    request = sign_request(credential.credential_id, sad, hashes)
    assert status_of(lambda: stub.SignHash(request, timeout=30)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_NOT_ALLOWED",
    )
    assert status_of(
        lambda: stub.SignHash(
            sign_request(credential.credential_id, "", hashes), metadata=as_signing, timeout=30
        )
    ) == (grpc.StatusCode.UNAUTHENTICATED, "SAD_MISSING")
    assert status_of(
        lambda: stub.SignHash(
            sign_request("cred_unknown", sad, hashes), metadata=as_signing, timeout=30
        )
    ) == (grpc.StatusCode.NOT_FOUND, "CREDENTIAL_NOT_FOUND")
    assert status_of(
        lambda: stub.SignHash(
            sign_request(credential.credential_id, sad, [b"\x00" * 31]),
            metadata=as_signing,
            timeout=30,
        )
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "HASH_LENGTH_MISMATCH")
    assert status_of(
        lambda: stub.SignHash(
            sign_request(credential.credential_id, sad, [sha256(b"y")] * 101),
            metadata=as_signing,
            timeout=30,
        )
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "BATCH_TOO_LARGE")
    # None of that spent the SAD.
    stub.SignHash(request, metadata=as_signing, timeout=30)
    verdict = stub.VerifyAuditLog(keys_pb2.VerifyAuditLogRequest(), metadata=as_signing)
    assert verdict.intact


def test_bad_owner_identifier_is_invalid_argument(stub, identity):
    request = keys_pb2.CreateCredentialRequest(
        idempotency_key="bad",
        owner=party_pb2.PartyIdentifier(
            namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID,
            value=PERSON_ID[:-1] + str((int(PERSON_ID[-1]) + 1) % 10),
        ),
        kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
        authorization_proof=identity.person(),
    )
    assert status_of(lambda: stub.CreateCredential(request, timeout=30)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "OWNER_INVALID",
    )


def _trust(stub) -> dict[str, bytes]:
    info = stub.GetTrustServiceInfo(keys_pb2.GetTrustServiceInfoRequest(), timeout=30)
    out = {}
    for c in info.certificates:
        name = c.certificate_url.rsplit("/", 1)[-1].removesuffix(".crt")
        out[name] = c.certificate_der
    return out


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


@openssl
def test_openssl_ocsp_against_running_responder_good_and_revoked(
    stub, identity, keys_process, tmp_path: Path
):
    good = create(stub, identity, "ocsp-good")
    revoked = create(stub, identity, "ocsp-revoked")
    stub.RevokeCredential(
        keys_pb2.RevokeCredentialRequest(
            credential_id=revoked.credential_id,
            reason=keys_pb2.CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE,
            authorization_proof=identity.person(),
        ),
        timeout=30,
    )
    trust = _trust(stub)
    (tmp_path / "root.pem").write_bytes(_pem(trust["root"]))
    (tmp_path / "ca.pem").write_bytes(_pem(trust["natural-person"]))
    ocsp_url = f"{keys_process.http_url}/ocsp"
    for credential, expected in ((good, ": good"), (revoked, ": revoked")):
        leaf = tmp_path / f"{credential.credential_id}.pem"
        leaf.write_bytes(_pem(credential.certificate_chain[0]))
        result = subprocess.run(
            [
                "openssl",
                "ocsp",
                "-issuer",
                tmp_path / "ca.pem",
                "-cert",
                leaf,
                "-url",
                ocsp_url,
                "-CAfile",
                tmp_path / "root.pem",
                "-verify_other",
                tmp_path / "ca.pem",
                "-resp_text",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Response verify OK" in result.stderr + result.stdout
        assert f"{leaf}{expected}" in result.stdout
    assert "Key Compromise" in result.stdout or "keyCompromise" in result.stdout


@openssl
def test_ocsp_get_and_unknown_serial(stub, identity, keys_process):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    trust = _trust(stub)
    ca = x509.load_der_x509_certificate(trust["natural-person"])
    credential = create(stub, identity, "ocsp-get")
    leaf = x509.load_der_x509_certificate(credential.certificate_chain[0])
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1()).build()
    encoded = base64.b64encode(request.public_bytes(Encoding.DER)).decode()
    response = ocsp.load_der_ocsp_response(
        httpx.get(f"{keys_process.http_url}/ocsp/{encoded}", timeout=30).content
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    unknown = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, 12345, hashes.SHA1()
        )
        .build()
    )
    response = ocsp.load_der_ocsp_response(
        httpx.post(
            f"{keys_process.http_url}/ocsp",
            content=unknown.public_bytes(Encoding.DER),
            headers={"content-type": "application/ocsp-request"},
            timeout=30,
        ).content
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


@openssl
def test_openssl_accepts_crl_from_http(stub, keys_process, tmp_path: Path):
    trust = _trust(stub)
    (tmp_path / "ca.pem").write_bytes(_pem(trust["natural-person"]))
    crl = httpx.get(f"{keys_process.http_url}/crl/natural-person.crl", timeout=30)
    assert crl.status_code == 200
    assert crl.headers["content-type"] == "application/pkix-crl"
    (tmp_path / "crl.der").write_bytes(crl.content)
    result = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            tmp_path / "crl.der",
            "-CAfile",
            tmp_path / "ca.pem",
            "-noout",
            "-text",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout
    assert "X509v3 CRL Number" in result.stdout


@openssl
def test_openssl_ts_verify_on_token_from_running_tsa(stub, keys_process, tmp_path: Path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"document bytes to time-stamp")
    query = tmp_path / "q.tsq"
    subprocess.run(
        ["openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query],
        check=True,
        capture_output=True,
        timeout=60,
    )
    reply = httpx.post(
        f"{keys_process.http_url}/tsa",
        content=query.read_bytes(),
        headers={"content-type": "application/timestamp-query"},
        timeout=30,
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(reply.content)
    trust = _trust(stub)
    (tmp_path / "root.pem").write_bytes(_pem(trust["root"]))
    result = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-queryfile",
            query,
            "-in",
            tmp_path / "r.tsr",
            "-CAfile",
            tmp_path / "root.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout
    text = subprocess.run(
        ["openssl", "ts", "-reply", "-in", tmp_path / "r.tsr", "-text"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    info = stub.GetTrustServiceInfo(keys_pb2.GetTrustServiceInfoRequest(), timeout=30)
    assert f"Policy OID: {info.tsa_policy_oid}" in text
    # A second token has another serial and echoes its own nonce (openssl -verify checked it).
    reply2 = httpx.post(
        f"{keys_process.http_url}/tsa",
        content=query.read_bytes(),
        headers={"content-type": "application/timestamp-query"},
        timeout=30,
    )
    (tmp_path / "r2.tsr").write_bytes(reply2.content)
    text2 = subprocess.run(
        ["openssl", "ts", "-reply", "-in", tmp_path / "r2.tsr", "-text"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def serial(t: str) -> str:
        return next(line for line in t.splitlines() if line.startswith("Serial number"))

    assert serial(text) != serial(text2)


def test_pyhanko_validator_checks_revocation_over_our_http(stub, identity):
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import RevokedError

    trust = _trust(stub)
    root = asn1_x509.Certificate.load(trust["root"])
    ca = asn1_x509.Certificate.load(trust["natural-person"])

    def validate(credential: keys_pb2.Credential) -> None:
        context = ValidationContext(
            trust_roots=[root], allow_fetching=True, revocation_mode="hard-fail"
        )
        validator = CertificateValidator(
            asn1_x509.Certificate.load(credential.certificate_chain[0]),
            intermediate_certs=[ca],
            validation_context=context,
        )
        asyncio.run(validator.async_validate_usage({"non_repudiation", "digital_signature"}))

    validate(create(stub, identity, "pyhanko-good"))
    doomed = create(stub, identity, "pyhanko-revoked")
    stub.RevokeCredential(
        keys_pb2.RevokeCredentialRequest(
            credential_id=doomed.credential_id,
            reason=keys_pb2.CERTIFICATE_REVOCATION_REASON_KEY_COMPROMISE,
            authorization_proof=identity.person(),
        ),
        timeout=30,
    )
    with pytest.raises(RevokedError):
        validate(doomed)


def test_client_library_round_trip(keys_process, identity, stub):
    from egov_clients.keys import KeysClient
    from egov_common.errors import Unauthenticated

    [(_, bearer)] = signing_metadata(identity)
    channel = keys_process.open_channel()
    client = KeysClient(channel, token=bearer.removeprefix("Bearer "))
    credential = create(stub, identity, "client-1")
    digest = sha256(b"via client")
    [signature] = client.authorize_and_sign(
        credential.credential_id, [digest], proof=identity.person(), description="client"
    )
    public = x509.load_der_x509_certificate(
        client.get_credential(credential.credential_id).certificate_chain[0]
    ).public_key()
    verify_digest_signature(public, signature, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA)
    sad = client.authorize(credential.credential_id, [digest], proof=identity.person())
    client.sign_hash(credential.credential_id, sad, [digest])
    with pytest.raises(Unauthenticated) as info:
        client.sign_hash(credential.credential_id, sad, [digest])
    assert info.value.reason == "SAD_ALREADY_USED"
    assert client.trust_info().tsa_url.endswith("/tsa")
    channel.close()


def test_pyhanko_timestamper_accepts_our_tsa(stub, keys_process):
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    digest = sha256(b"pdf signature value")
    stamper = HTTPTimeStamper(f"{keys_process.http_url}/tsa")
    signed_data = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    root = asn1_x509.Certificate.load(_trust(stub)["root"])
    context = ValidationContext(
        trust_roots=[root], allow_fetching=True, revocation_mode="hard-fail"
    )
    status = asyncio.run(
        validate_tst_signed_data(signed_data["content"], context, lambda _alg: digest)
    )
    assert status["intact"] and status["valid"]
    assert status["trust_problem_indic"] is None  # path to our root, revocation checked
    assert status["validation_path"] is not None


def test_get_credential_masks_the_owner_for_callers_who_do_not_need_it(stub, identity, as_signing):
    credential = create(stub, identity, "grpc-get")
    request = keys_pb2.GetCredentialRequest(credential_id=credential.credential_id)
    anonymous = stub.GetCredential(request, timeout=30).credential
    assert anonymous.owner.value == f"{PERSON_ID[0]}-{PERSON_ID[1:5]}-xxxxx-xx-{PERSON_ID[-1]}"
    assert list(anonymous.certificate_chain) == []
    # The signing service (what it needs to sign: the chain) and the owner's own access token.
    owner_token = identity.token(
        sub="sub-0708",
        typ="at+jwt",
        aud="urn:egov:keys",
        client_id="citizen-portal",
        identifier=f"TH-PID:{PERSON_ID}",
    )
    for metadata in (as_signing, (("authorization", f"Bearer {owner_token}"),)):
        seen = stub.GetCredential(request, metadata=metadata, timeout=30).credential
        assert seen.owner.value == PERSON_ID
        assert list(seen.certificate_chain) == list(credential.certificate_chain)
