"""signing with keys and registry as real processes: reserve before signing (QR code in the
stamp), register the final digest after, report the registry status when verifying."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from egov.keys.v1 import keys_pb2
from egov.registry.v1 import registry_pb2
from egov.signing.v1 import signing_pb2 as pb
from egov_clients.registry import RegistryClient
from egov_clients.signing import BatchDocument, SigningClient, Stamp, registration
from egov_common.errors import EgovError
from egov_pki.identifiers import check_digit
from egov_testing.processes import ServiceProcess, start_service
from keys_world import PERSON_ID
from signing_testkit import create_person_credential, make_pdf, signing_token

pytestmark = pytest.mark.slow

AGENCY = "TH-JUR:0994" + "00000001" + str(check_digit("099400000001"))
ISSUER_TOKEN = "issuer-token-agency-1"


@pytest.fixture(scope="module")
def registry_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data = tmp_path_factory.mktemp("registry")
    env = {
        "EGOV_REGISTRY_DATABASE_URL": f"sqlite:///{data / 'registry.db'}",
        "EGOV_REGISTRY_LOG_KEY_FILE": str(data / "log-key.pem"),
        "EGOV_REGISTRY_STATIC_TOKENS": json.dumps(
            {ISSUER_TOKEN: {"subject": "agency-1", "scopes": ["registry:issue"], "agency": AGENCY}}
        ),
        "EGOV_REGISTRY_LOG_LEVEL": "WARNING",
    }
    with start_service("egov_registry", env=env, data_dir=data, http=False) as service:
        yield service


@pytest.fixture(scope="module")
def signing(keys_process, registry_process, identity) -> Iterator[ServiceProcess]:  # type: ignore[no-untyped-def]
    env = {
        "EGOV_KEYS_ADDRESS": keys_process.grpc_address,
        "EGOV_REGISTRY_ADDRESS": registry_process.grpc_address,
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity),
    }
    with start_service("egov_signing", env=env, http=False) as service:
        yield service


@pytest.fixture(scope="module")
def credential(keys_process, identity) -> keys_pb2.Credential:  # type: ignore[no-untyped-def]
    from egov.keys.v1 import keys_pb2_grpc

    channel = keys_process.open_channel()
    try:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        return create_person_credential(stub, identity, "signing-registration-it", PERSON_ID)
    finally:
        channel.close()


@pytest.fixture(scope="module")
def client(signing) -> Iterator[SigningClient]:  # type: ignore[no-untyped-def]
    with SigningClient(signing.grpc_address, token=ISSUER_TOKEN) as c:
        yield c


def _sign(client: SigningClient, credential, identity, key: str, **extra):  # type: ignore[no-untyped-def]
    return client.sign_document(
        make_pdf(),
        credential_id=credential.credential_id,
        authorization_proof=identity.person(),
        level="B-LTA",
        reason="ออกหนังสือรับรอง",
        stamp=Stamp(language="th", include_qr_code=True),
        registration=registration(
            issuer=AGENCY, document_type="certificate", idempotency_key=key, **extra
        ),
    )


def test_registered_document_carries_qr_url_and_verifies_with_inclusion_proof(
    client, credential, identity
) -> None:
    signed = _sign(client, credential, identity, "it-reg-1")
    assert signed.registered
    assert signed.result.document_id and signed.result.verification_url.endswith(
        signed.result.document_id
    )
    reply = client.verify_document(signed.pdf)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED", reply.summary
    registry = reply.report.registry
    assert pb.RegistryCheckStatus.Name(registry.status) == "REGISTRY_CHECK_STATUS_REGISTERED"
    assert registry.inclusion_verified, registry.problem
    assert registry.document.document_id == signed.result.document_id


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler absent")
def test_stamp_is_thai_with_buddhist_era(client, credential, identity) -> None:
    signed = _sign(client, credential, identity, "it-reg-2")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=signed.pdf, capture_output=True, check=True
    ).stdout.decode()
    year = signed.result.signing_time.ToDatetime().year + 543
    assert f"{year}" in text
    assert "เหตุผล ออกหนังสือรับรอง" in text


def test_revoked_registry_entry_fails_the_document(
    client, registry_process, credential, identity
) -> None:
    signed = _sign(client, credential, identity, "it-reg-3")
    with RegistryClient(registry_process.grpc_address, token=ISSUER_TOKEN) as registry:
        registry.revoke(signed.result.document_id, registry_pb2.REVOCATION_REASON_ISSUED_IN_ERROR)
    reply = client.verify_document(signed.pdf)
    assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_FAILED"
    assert pb.RegistryCheckStatus.Name(reply.report.registry.status) == (
        "REGISTRY_CHECK_STATUS_REVOKED"
    )
    assert "revoked" in reply.report.reason


def test_a_retried_signing_whose_answer_was_lost_is_refused_naming_the_registered_document(
    client, credential, identity
) -> None:
    first = _sign(client, credential, identity, "it-reg-4")
    assert first.registered
    with pytest.raises(EgovError) as refused:  # before anything is authorised or signed again
        _sign(client, credential, identity, "it-reg-4")
    assert (refused.value.code.value, refused.value.reason) == (
        "ALREADY_EXISTS",
        "ALREADY_REGISTERED",
    )
    assert refused.value.metadata["document_id"] == first.result.document_id
    # named as the caller sent it, not as signing passed it on to the registry
    assert [v.field for v in refused.value.field_violations] == [
        "options.registration.idempotency_key"
    ]


def test_two_signings_racing_with_one_key_register_one_document_and_lose_neither(
    client, credential, identity
) -> None:
    # Both may reserve before either registers: then the registry refuses the second digest
    # after signing, and its signed PDF still comes back, UNREGISTERED, with the reason. One
    # that reserves after the first registered is refused before signing, as a retry is.
    barrier = threading.Barrier(2)

    def sign() -> object:
        barrier.wait()
        try:
            return _sign(client, credential, identity, "it-reg-race")
        except EgovError as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: sign(), range(2)))
    signed = [o for o in outcomes if not isinstance(o, EgovError)]
    registered = [o for o in signed if o.registered]  # type: ignore[attr-defined]
    assert len(registered) == 1
    for other in outcomes:
        if other is registered[0]:
            continue
        if isinstance(other, EgovError):
            assert other.reason == "ALREADY_REGISTERED"
            assert other.metadata["document_id"] == registered[0].result.document_id
        else:
            assert pb.RegistrationStatus.Name(other.result.registration_status) == (  # type: ignore[attr-defined]
                "REGISTRATION_STATUS_UNREGISTERED"
            )
            assert other.result.registration_error.reason == "IDEMPOTENCY_KEY_REUSED"  # type: ignore[attr-defined]
            # the registered document is named: its id is what the caller needs of it
            assert registered[0].result.document_id in other.result.registration_error.message  # type: ignore[attr-defined]
            reply = client.verify_document(other.pdf, skip_registry=True)  # type: ignore[attr-defined]
            assert pb.Indication.Name(reply.report.indication) == "INDICATION_TOTAL_PASSED"


def test_validity_is_registered_to_the_millisecond_asked_for(
    client, registry_process, credential, identity
) -> None:
    # a record dated before 1970 (a float timestamp lost a millisecond of it) and "valid for
    # ever" as Python spells it (which signing refused as beyond year 9999): the registry
    # holds what the issuer asked, as if asked directly
    valid_from = datetime(1935, 10, 11, 6, 35, 6, 732000, tzinfo=UTC)
    signed = _sign(
        client,
        credential,
        identity,
        "it-reg-9",
        valid_from=valid_from,
        valid_until=datetime.max.replace(tzinfo=UTC),
    )
    assert signed.registered, signed.result.registration_error
    with RegistryClient(registry_process.grpc_address, token=ISSUER_TOKEN) as registry:
        document = registry.get_document(signed.result.document_id)
    assert document.valid_from.ToDatetime(tzinfo=UTC) == valid_from
    assert document.valid_until.ToMilliseconds() == 253_402_300_799_999  # 9999-12-31 23:59:59.999


def test_batch_signs_under_one_authorisation_and_fails_bad_documents_alone(
    client, credential, identity
) -> None:
    results = client.sign_documents(
        [
            BatchDocument("a", make_pdf(text="A")),
            BatchDocument("bad", b"not a pdf at all"),
            BatchDocument("c", make_pdf(text="C")),
        ],
        credential_id=credential.credential_id,
        authorization_proof=identity.person(),
        level="B-T",
    )
    assert [r.client_reference for r in results] == ["a", "bad", "c"]
    assert results[0].signed_pdf.startswith(b"%PDF") and results[2].signed_pdf
    assert results[1].error.reason == "NOT_A_PDF"


def test_reservation_needs_an_issuer_token(signing, credential, identity) -> None:
    with SigningClient(signing.grpc_address) as anonymous, pytest.raises(EgovError) as err:
        _sign(anonymous, credential, identity, "it-reg-5")
    assert err.value.code.value in {"UNAUTHENTICATED", "PERMISSION_DENIED"}


def test_signings_own_registry_authority_does_not_register_a_persons_document(
    own_authority, credential, identity
) -> None:  # type: ignore[no-untyped-def]
    # a caller without a token of its own must not borrow signing's registry authority to
    # register a citizen's document as issued by the agency
    with pytest.raises(EgovError) as err:
        _sign(own_authority, credential, identity, "it-reg-6")
    assert (err.value.code.value, err.value.reason) == (
        "PERMISSION_DENIED",
        "ISSUER_NOT_SEAL_OWNER",
    )


def _agency_credential(keys_process, kind: int, proof: str, key: str) -> keys_pb2.Credential:  # type: ignore[no-untyped-def]
    """A credential of AGENCY in the real keys service: its e-seal or its legal person's."""
    from egov.keys.v1 import keys_pb2_grpc
    from egov.type.v1 import party_pb2

    channel = keys_process.open_channel()
    try:
        reply = keys_pb2_grpc.KeysServiceStub(channel).CreateCredential(
            keys_pb2.CreateCredentialRequest(
                idempotency_key=key,
                owner=party_pb2.PartyIdentifier(
                    namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR,
                    value=AGENCY.removeprefix("TH-JUR:"),
                ),
                kind=kind,  # type: ignore[arg-type]
                names=party_pb2.PartyNames(organization_name_en="Agency One"),
                authorization_proof=proof,
            ),
            timeout=30,
        )
    finally:
        channel.close()
    credential: keys_pb2.Credential = reply.credential
    return credential


@pytest.fixture
def own_authority(keys_process, registry_process, identity) -> Iterator[SigningClient]:  # type: ignore[no-untyped-def]
    """A caller without a token of its own, at a signing that holds its own registry authority
    (here a token for AGENCY; over mTLS, any agency by the registry's TRUSTED_SERVICES)."""
    env = {
        "EGOV_KEYS_ADDRESS": keys_process.grpc_address,
        "EGOV_REGISTRY_ADDRESS": registry_process.grpc_address,
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity),
        "EGOV_SIGNING_REGISTRY_TOKEN": ISSUER_TOKEN,
    }
    with (
        start_service("egov_signing", env=env, http=False) as service,
        SigningClient(service.grpc_address) as anonymous,
    ):
        yield anonymous


def test_signings_own_registry_authority_registers_for_the_agencys_own_e_seal(
    keys_process, own_authority, identity
) -> None:  # type: ignore[no-untyped-def]
    seal_client = identity.agency_client(agency=AGENCY.removeprefix("TH-JUR:"))
    seal = _agency_credential(
        keys_process, keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL, seal_client, "it-reg-seal"
    )
    signed = own_authority.sign_document(
        make_pdf(),
        credential_id=seal.credential_id,
        authorization_proof=seal_client,
        level="B-B",
        registration=registration(
            issuer=AGENCY, document_type="certificate", idempotency_key="it-reg-8"
        ),
    )
    assert signed.registered, signed.result.registration_error


def test_signings_own_registry_authority_does_not_register_for_a_representative(
    keys_process, registry_process, own_authority, identity
) -> None:  # type: ignore[no-untyped-def]
    # a representative of the agency with the sign power (no issuer role at the registry)
    # signs with the agency's legal-person credential: its certificate names the agency as an
    # e-seal's would, but signing's own registry authority is not lent to it
    representative = identity.representative(
        company=AGENCY.removeprefix("TH-JUR:"), names={"organization_name": "Agency One"}
    )
    legal_person = _agency_credential(
        keys_process, keys_pb2.CREDENTIAL_KIND_LEGAL_PERSON, representative, "it-reg-legal"
    )
    with RegistryClient(registry_process.grpc_address) as registry:
        before = registry.get_signed_tree_head().tree_size
        with pytest.raises(EgovError) as err:
            own_authority.sign_document(
                make_pdf(),
                credential_id=legal_person.credential_id,
                authorization_proof=representative,
                level="B-B",
                registration=registration(
                    issuer=AGENCY, document_type="certificate", idempotency_key="it-reg-7"
                ),
            )
        assert (err.value.code.value, err.value.reason) == (
            "PERMISSION_DENIED",
            "ISSUER_NOT_SEAL_OWNER",
        )
        assert registry.get_signed_tree_head().tree_size == before


def test_keys_down_is_unavailable_keys_unavailable() -> None:
    env = {"EGOV_KEYS_ADDRESS": "127.0.0.1:9", "EGOV_REGISTRY_ADDRESS": "127.0.0.1:9"}
    with (
        start_service("egov_signing", env=env, http=False) as lonely,
        SigningClient(lonely.grpc_address) as c,
        pytest.raises(EgovError) as err,
    ):
        c.sign_document(make_pdf(), credential_id="cred-x", level="B-B")
    assert (err.value.code.value, err.value.reason) == ("UNAVAILABLE", "KEYS_UNAVAILABLE")


def test_a_tokenless_caller_without_the_seals_proof_cannot_probe_its_idempotency_keys(
    keys_process, registry_process, own_authority, identity
) -> None:  # type: ignore[no-untyped-def]
    # Signing's own registry authority covers any agency: used before keys accepted the
    # caller for the e-seal, a reservation under the agency's idempotency key would name the
    # document registered under it (the registry refuses that caller the same question).
    seal_client = identity.agency_client(agency=AGENCY.removeprefix("TH-JUR:"))
    seal = _agency_credential(
        keys_process, keys_pb2.CREDENTIAL_KIND_ELECTRONIC_SEAL, seal_client, "it-reg-seal-2"
    )

    def sign(proof: str, key: str):  # type: ignore[no-untyped-def]
        return own_authority.sign_document(
            make_pdf(),
            credential_id=seal.credential_id,
            authorization_proof=proof,
            level="B-B",
            registration=registration(
                issuer=AGENCY, document_type="certificate", idempotency_key=key
            ),
        )

    registered = sign(seal_client, "it-reg-10")
    assert registered.registered, registered.result.registration_error
    with RegistryClient(registry_process.grpc_address) as registry:
        before = registry.get_signed_tree_head().tree_size
    for guess in ("it-reg-10", "it-reg-11"):
        with pytest.raises(EgovError) as err:
            sign("", guess)
        assert (err.value.code.value, err.value.reason) == ("PERMISSION_DENIED", "SCOPE_MISSING")
        assert "document_id" not in err.value.metadata
        assert registered.result.document_id not in err.value.message
    with RegistryClient(registry_process.grpc_address) as registry:
        assert registry.get_signed_tree_head().tree_size == before


def test_a_batch_whose_answer_exceeds_the_message_size_is_refused_before_signing(
    keys_process, registry_process, client, credential, identity
) -> None:  # type: ignore[no-untyped-def]
    # gRPC refuses to send an answer over the message size: found only then, every document
    # of the batch was signed and registered and the caller had none of them. The estimate
    # covers what B-LTA appends after signing (keys' OCSP answers and certificates in the DSS,
    # the document time-stamp).
    def batch(prefix: str) -> list[BatchDocument]:
        return [
            BatchDocument(
                f"doc-{n}",
                make_pdf(image_bytes=150_000),
                registration(
                    issuer=AGENCY, document_type="certificate", idempotency_key=f"{prefix}-{n}"
                ),
            )
            for n in range(3)
        ]

    options = {
        "credential_id": credential.credential_id,
        "level": "B-LTA",
        "stamp": Stamp(language="th", include_qr_code=True),
    }
    results = client.sign_documents(
        batch("it-batch-a"), authorization_proof=identity.person(), **options
    )
    assert all(r.result.registration_status == pb.REGISTRATION_STATUS_REGISTERED for r in results)
    answer_bytes = pb.SignDocumentsResponse(results=results).ByteSize()

    env = {
        "EGOV_KEYS_ADDRESS": keys_process.grpc_address,
        "EGOV_REGISTRY_ADDRESS": registry_process.grpc_address,
        "EGOV_SIGNING_KEYS_TOKEN": signing_token(identity),
        # 5 % less than that answer took (its size varies by a few bytes between signings)
        "EGOV_SIGNING_MAX_MESSAGE_BYTES": str(answer_bytes * 19 // 20),
    }
    with (
        start_service("egov_signing", env=env, http=False) as smaller,
        SigningClient(smaller.grpc_address, token=ISSUER_TOKEN) as small_client,
        RegistryClient(registry_process.grpc_address) as registry,
    ):
        before = registry.get_signed_tree_head().tree_size
        with pytest.raises(EgovError) as err:
            small_client.sign_documents(
                batch("it-batch-b"), authorization_proof=identity.person(), **options
            )
        assert (err.value.code.value, err.value.reason) == ("INVALID_ARGUMENT", "BATCH_TOO_LARGE")
        assert int(err.value.metadata["min_calls"]) >= 2
        assert registry.get_signed_tree_head().tree_size == before
