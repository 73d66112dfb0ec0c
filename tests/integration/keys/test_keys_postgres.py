"""Two keys processes on one PostgreSQL database behave as one service: a SAD spent on one is
refused on the other, the audit chain stays linear, certificate serials stay unique."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import sqlalchemy as sa
from conftest import keys_env
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.status import from_rpc_error
from egov_testing.processes import start_service
from keys_world import PERSON_ID, sha256

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_processes(postgres_url, jwks_url):
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
    with (
        start_service("egov_keys", env=env) as a,
        start_service("egov_keys", env=env) as b,
    ):
        channels = [a.open_channel(), b.open_channel()]
        yield [keys_pb2_grpc.KeysServiceStub(c) for c in channels], postgres_url
        for c in channels:
            c.close()


def create(stub, identity, key: str) -> keys_pb2.Credential:
    return stub.CreateCredential(
        keys_pb2.CreateCredentialRequest(
            idempotency_key=key,
            owner=party_pb2.PartyIdentifier(
                namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=PERSON_ID
            ),
            kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
            names=party_pb2.PartyNames(given_name_en="Somchai", family_name_en="Jaidee"),
            authorization_proof=identity.person(),
        ),
        timeout=60,
    ).credential


def test_two_processes_on_one_postgres_behave_as_one_service(two_processes, identity):
    (a, b), url = two_processes
    signing = identity.token(
        sub="signing", client_id="signing", aud="urn:egov:keys", acr=None, auth_time=None
    )
    metadata = (("authorization", f"Bearer {signing}"),)

    # Serials stay unique while both processes issue at once.
    with ThreadPoolExecutor(6) as pool:
        credentials = list(
            pool.map(lambda i: create((a, b)[i % 2], identity, f"pg-{i}"), range(12))
        )
    serials = [c.certificate_serial for c in credentials]
    assert len(set(serials)) == len(serials)

    # One SAD, raced on both processes: exactly one signature.
    credential = credentials[0]
    digest = sha256(b"contract")
    sad = a.Authorize(
        keys_pb2.AuthorizeRequest(
            credential_id=credential.credential_id,
            hashes=[digest],
            hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
            num_signatures=1,
            authorization_proof=identity.person(),
        ),
        timeout=60,
    ).sad
    request = keys_pb2.SignHashRequest(
        credential_id=credential.credential_id,
        sad=sad,
        hashes=[digest],
        hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
    )

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
    sad2 = b.Authorize(
        keys_pb2.AuthorizeRequest(
            credential_id=credential.credential_id,
            hashes=[digest],
            hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
            num_signatures=1,
            authorization_proof=identity.person(),
        ),
        timeout=60,
    ).sad
    request2 = keys_pb2.SignHashRequest(
        credential_id=credential.credential_id,
        sad=sad2,
        hashes=[digest],
        hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
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
