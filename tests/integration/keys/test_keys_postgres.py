"""Two keys processes on one PostgreSQL database behave as one service: a SAD spent on one is
refused on the other, the audit chain stays linear, certificate serials stay unique."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import sqlalchemy as sa
import test_keys_sole_control as sole_control
from cryptography import x509
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov_common.status import from_rpc_error
from egov_keys.domain.model import RevocationReason
from egov_keys.runtime import bootstrap
from egov_testing.processes import start_service
from keys_grpc import authorize, create_person_credential, keys_env, sign_request, signing_metadata
from keys_world import ANON, LocalIdentity, another_process, build_keys, fixed_clock, sha256
from test_keys_sole_control import create_person, renew

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["replicas", "workers"])
def two_processes(request, postgres_url, jwks_url):
    """Two replicas (processes on their own ports), or one service with two worker processes
    on one port (``EGOV_KEYS_PROCESSES=2``) reached over two connections."""
    env = {
        **keys_env(jwks_url),
        "EGOV_KEYS_DATABASE_URL": postgres_url,
        "EGOV_KEYS_AUTO_BOOTSTRAP": "false",
        "EGOV_KEYS_PUBLIC_BASE_URL": "http://keys.test",
    }
    subprocess.run(
        [sys.executable, "-m", "egov_keys", "bootstrap"],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )
    with contextlib.ExitStack() as stack:
        if request.param == "replicas":
            a = stack.enter_context(start_service("egov_keys", env=env))
            b = stack.enter_context(start_service("egov_keys", env=env))
            channels = [a.open_channel(), b.open_channel()]
        else:
            service = stack.enter_context(
                start_service("egov_keys", env={**env, "EGOV_KEYS_PROCESSES": "2"})
            )
            channels = [
                grpc.insecure_channel(
                    service.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]
                )
                for _ in range(2)
            ]
        yield [keys_pb2_grpc.KeysServiceStub(c) for c in channels], postgres_url
        for c in channels:
            c.close()


def test_two_processes_on_one_postgres_behave_as_one_service(two_processes, identity):
    (a, b), url = two_processes
    metadata = signing_metadata(identity)

    # Serials stay unique while both processes issue at once.
    with ThreadPoolExecutor(6) as pool:
        credentials = list(
            pool.map(
                lambda i: create_person_credential((a, b)[i % 2], identity, f"pg-{i}"), range(12)
            )
        )
    serials = [c.certificate_serial for c in credentials]
    assert len(set(serials)) == len(serials)

    # One SAD, raced on both processes: exactly one signature.
    credential = credentials[0]
    digest = sha256(b"contract")
    sad = authorize(a, identity, credential.credential_id, [digest])
    request = sign_request(credential.credential_id, sad, [digest])

    def spend(i: int) -> str:
        try:
            (a, b)[i % 2].SignHash(request, metadata=metadata, timeout=60)
            return "signed"
        except grpc.RpcError as err:
            return from_rpc_error(err).reason

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(spend, range(6)))
    assert outcomes.count("signed") == 1
    assert set(outcomes) - {"signed"} == {"SAD_ALREADY_USED"}

    # A SAD spent on one process is refused by the other.
    request2 = sign_request(
        credential.credential_id,
        authorize(b, identity, credential.credential_id, [digest]),
        [digest],
    )
    b.SignHash(request2, metadata=metadata, timeout=60)
    with pytest.raises(grpc.RpcError) as info:
        a.SignHash(request2, metadata=metadata, timeout=60)
    assert from_rpc_error(info.value).reason == "SAD_ALREADY_USED"

    # The audit chain is one line through both processes' appends.
    for stub in (a, b):
        verdict = stub.VerifyAuditLog(keys_pb2.VerifyAuditLogRequest(), metadata=metadata)
        assert verdict.intact, verdict.problem
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sequences = [
            r[0] for r in conn.execute(sa.text("SELECT sequence FROM audit_log ORDER BY sequence"))
        ]
        successes = conn.execute(
            sa.text(
                "SELECT count(*) FROM audit_log WHERE action = 'signature.batch' "
                "AND outcome = 'success'"
            )
        ).scalar_one()
    engine.dispose()
    assert sequences == list(range(1, len(sequences) + 1))
    assert successes == 2


def test_calls_go_on_after_the_database_drops_every_connection(
    postgres_url, drop_connections, identity
):
    """A PostgreSQL restart or failover ends every session: the service's kept connections are
    replaced on first use, and Authorize and SignHash go on without a failed call."""
    from egov_keys.domain.algorithms import HashAlgorithm
    from egov_keys.domain.model import AuditEvent
    from keys_world import ADMIN, SIGNING, build_keys
    from test_keys_sole_control import create_person

    keys = build_keys(postgres_url, identity)
    try:
        credential = create_person(keys, identity)

        def authorize_and_sign(text: bytes) -> list[bytes]:
            hashes = [sha256(text)]
            sad = keys.credentials.authorize(
                ANON,
                credential_id=credential.credential_id,
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                num_signatures=1,
                proof_token=identity.person(),
                description="",
            ).sad
            return keys.credentials.sign_hash(
                SIGNING,
                credential_id=credential.credential_id,
                sad=sad,
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                scheme=None,
            )

        assert len(authorize_and_sign(b"before")) == 1
        assert drop_connections() >= 1
        for i in range(3):
            assert len(authorize_and_sign(f"after {i}".encode())) == 1
        # A write that comes first (a refusal's audit entry) finds a dead connection too.
        assert drop_connections() >= 1
        event = AuditEvent("signature.batch", "test", credential.credential_id, "failure:X", "{}")
        keys.repository.append_audit(event, dt.datetime.now(dt.UTC))
        assert len(authorize_and_sign(b"last")) == 1
        assert keys.credentials.verify_audit(ADMIN).intact
    finally:
        keys.close()


def test_a_nul_character_in_an_identifier_is_refused_with_its_reason(postgres_url, identity):
    """PostgreSQL refuses a NUL in any text parameter: a request carrying one gets the reason
    the contract names, never INTERNAL, and nothing is written."""
    import base64

    from egov_common.errors import EgovError
    from egov_keys.domain.algorithms import HashAlgorithm
    from egov_keys.domain.model import RevocationReason
    from keys_world import ADMIN, SIGNING, build_keys
    from test_keys_sole_control import create_person

    keys = build_keys(postgres_url, identity)
    try:
        credential = create_person(keys, identity)
        nul_id = credential.credential_id + "\x00"
        hashes = [sha256(b"a")]
        svc = keys.credentials
        calls = {
            "get": lambda: svc.get(nul_id),
            "authorize": lambda: svc.authorize(
                ANON,
                credential_id=nul_id,
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                num_signatures=1,
                proof_token=identity.person(),
                description="",
            ),
            "sign": lambda: svc.sign_hash(
                SIGNING,
                credential_id=nul_id,
                sad="sad1.x",
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                scheme=None,
            ),
            "revoke": lambda: svc.revoke(
                ANON, nul_id, RevocationReason.KEY_COMPROMISE, identity.person()
            ),
            "renew": lambda: svc.renew(
                ANON,
                idempotency_key="renew-1",
                credential_id=nul_id,
                algorithm=None,
                proof_token=identity.person(),
            ),
            "renew key": lambda: renew(svc, credential, "renew\x00", identity.person()),
            "create key": lambda: create_person(keys, identity, key="create\x00"),
            "list page": lambda: svc.list_credentials(
                ANON,
                owner=credential.owner,
                proof_token=identity.person(),
                status=None,
                page_size=0,
                page_token=base64.urlsafe_b64encode(b"cred_\x00").decode(),
            ),
        }
        reasons = {}
        for name, call in calls.items():
            with pytest.raises(EgovError) as info:
                call()
            reasons[name] = f"{info.value.code.value}/{info.value.reason}"
        assert reasons == {
            "get": "NOT_FOUND/CREDENTIAL_NOT_FOUND",
            "authorize": "NOT_FOUND/CREDENTIAL_NOT_FOUND",
            "sign": "NOT_FOUND/CREDENTIAL_NOT_FOUND",
            "revoke": "NOT_FOUND/CREDENTIAL_NOT_FOUND",
            "renew": "NOT_FOUND/CREDENTIAL_NOT_FOUND",
            "renew key": "INVALID_ARGUMENT/IDEMPOTENCY_KEY_MISSING",
            "create key": "INVALID_ARGUMENT/IDEMPOTENCY_KEY_MISSING",
            "list page": "INVALID_ARGUMENT/PAGE_TOKEN_INVALID",
        }
        # An audit query for such a credential finds nothing (there is none).
        assert svc.audit_events(ADMIN, credential_id=nul_id, page_size=0, page_token="") == (
            [],
            "",
        )
        assert svc.get(credential.credential_id).status.value == "active"
        assert svc.verify_audit(ADMIN).intact
    finally:
        keys.close()


def test_a_ca_replaced_twice_on_postgres_and_a_replica_that_held_the_old_one(postgres_url):
    """Bootstrap replaces the natural-person CA twice (two retired rows of one name, the longest
    names within the columns); a replica that read the hierarchy before each replacement and
    would read it again only in a minute issues under the new CA and publishes no CRL made with
    the replaced key."""
    clock = fixed_clock()
    identity = LocalIdentity(now=lambda: clock.now().timestamp())
    keys = build_keys(postgres_url, identity, clock, authority_recheck_seconds=0)
    replica = another_process(keys, identity, clock, authority_recheck_seconds=60)
    try:
        credential = create_person(keys, identity, key="first")
        cas = [keys.trust.authority("natural-person").certificate]
        for round_ in range(2):
            replica.trust.authority("root")  # it reads revocations now, and not for a minute
            keys.trust.revoke_authority("natural-person", RevocationReason.CA_COMPROMISE, "op")
            assert bootstrap(keys.settings) == ["natural-person", "ocsp-natural-person"]
            cas.append(keys.trust.authority("natural-person").certificate)
            crl = x509.load_der_x509_crl(replica.trust.crl("natural-person"))
            assert crl.is_signature_valid(cas[-1].public_key())
            credential, _ = renew(
                replica.credentials, credential, f"renew-{round_}", identity.person()
            )
            cert = x509.load_der_x509_certificate(credential.certificate_der)
            cert.verify_directly_issued_by(cas[-1])

        retired = [name for name in keys.repository.authorities() if "@" in name]
        assert len(retired) == 4  # two CAs, two OCSP signers
        root_crl = x509.load_der_x509_crl(keys.trust.crl("root"))
        assert [
            bool(root_crl.get_revoked_certificate_by_serial_number(ca.serial_number)) for ca in cas
        ] == [True, True, False]
        sad = sole_control.authorize(keys.credentials, identity, credential, [sha256(b"a")])
        assert sole_control.sign(keys.credentials, credential, sad, [sha256(b"a")])
    finally:
        replica.close()
        keys.close()


def test_verifying_the_log_while_another_process_appends_finds_it_intact(
    postgres_url, identity
):
    """VerifyAuditLog reads the head and the entries in one REPEATABLE READ snapshot: what
    another replica appends meanwhile is neither tampering nor checked."""
    import egov_keys.credentials
    from keys_world import ADMIN

    keys = build_keys(postgres_url, identity)
    other = another_process(keys, identity)
    try:
        credential = create_person(keys, identity)
        verify_chain = egov_keys.credentials.verify_chain
        heads: list[int] = []

        def verify_while_the_other_appends(entries, head_sequence, head_hash):
            for i in range(3):
                sole_control.authorize(
                    other.credentials, identity, credential, [sha256(f"{i}".encode())]
                )
            heads.append(head_sequence)
            return verify_chain(entries, head_sequence, head_hash)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(egov_keys.credentials, "verify_chain", verify_while_the_other_appends)
            verdict = keys.credentials.verify_audit(ADMIN)
        assert verdict.intact, verdict.problem
        assert verdict.entries_checked == heads[0]
        after = keys.credentials.verify_audit(ADMIN)
        assert after.intact and after.entries_checked == heads[0] + 3
    finally:
        other.close()
        keys.close()
