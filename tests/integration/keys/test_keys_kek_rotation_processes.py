"""Rotating the software KEK on real processes, on SQLite and PostgreSQL: replicas rolled to the
new KEK keep signing old keys, ``python -m egov_keys rewrap-kek`` moves every blob while they
serve, the old KEK is then dropped, and a replica that meets a blob under a KEK it lacks refuses
to start, naming the KEK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov_keys.domain.algorithms import HashAlgorithm, SignatureScheme, verify_digest_signature
from egov_testing.processes import free_port, start_service
from keys_grpc import authorize, create_person_credential, keys_env, sign_request, signing_metadata
from keys_world import new_kek, sha256

KEK_A, KEK_B = new_kek(), new_kek()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keys.db'}"
    return str(request.getfixturevalue("postgres_url"))


def run_keys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egov_keys", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
        check=False,
    )


def sign_with(stub, identity, credential, text: str) -> None:
    digest = sha256(text.encode())
    sad = authorize(stub, identity, credential.credential_id, [digest])
    response = stub.SignHash(
        sign_request(credential.credential_id, sad, [digest]),
        metadata=signing_metadata(identity),
        timeout=60,
    )
    public = x509.load_der_x509_certificate(credential.certificate_chain[0]).public_key()
    verify_digest_signature(
        public, response.signatures[0], digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA
    )


def kek_ids_in_database(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        blobs = conn.execute(
            sa.text("SELECT key_blob FROM authorities UNION ALL SELECT key_blob FROM credentials")
        ).scalars()
        ids = [bytes(b)[5 : 5 + bytes(b)[4]].decode() for b in blobs]
    engine.dispose()
    return ids


def rewrap_entries(url: str) -> list[dict[str, object]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT outcome, details_json FROM audit_log WHERE action = 'kek.rewrap' "
                "ORDER BY sequence"
            )
        ).all()
    engine.dispose()
    return [{"outcome": r[0], **json.loads(r[1])} for r in rows]


def test_kek_rotation_while_two_replicas_serve(database_url, jwks_url, identity, tmp_path):
    base = {
        **keys_env(jwks_url),
        "EGOV_KEYS_DATABASE_URL": database_url,
        "EGOV_KEYS_AUTO_BOOTSTRAP": "false",
        "EGOV_KEYS_PUBLIC_BASE_URL": "http://keys.test",
    }
    under_a = {**base, "EGOV_KEYS_SOFTWARE_KEK": KEK_A, "EGOV_KEYS_SOFTWARE_KEK_ID": "kek-a"}
    previous = tmp_path / "previous-keks"  # as mounted from a secret
    previous.write_text(f"kek-a={KEK_A}\n")
    rolled = {
        **base,
        "EGOV_KEYS_SOFTWARE_KEK": KEK_B,
        "EGOV_KEYS_SOFTWARE_KEK_ID": "kek-b",
        "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS_FILE": str(previous),
    }
    only_b = {**base, "EGOV_KEYS_SOFTWARE_KEK": KEK_B, "EGOV_KEYS_SOFTWARE_KEK_ID": "kek-b"}

    assert run_keys(under_a, "bootstrap").returncode == 0
    with start_service("egov_keys", env=under_a) as service, service.open_channel() as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        old = create_person_credential(stub, identity, "kek-old")
        sign_with(stub, identity, old, "before the rotation")

    # Step 1: both replicas get kek-b as current and kek-a as previous.
    with (
        start_service("egov_keys", env=rolled) as first,
        start_service("egov_keys", env=rolled) as second,
        first.open_channel() as c1,
        second.open_channel() as c2,
    ):
        stubs = [keys_pb2_grpc.KeysServiceStub(c) for c in (c1, c2)]
        new = create_person_credential(stubs[0], identity, "kek-new")
        sign_with(stubs[1], identity, old, "old key, rolled replica")

        # Step 2: rewrap-kek while the replicas keep signing with the old key.
        stop, signed, errors = threading.Event(), [], []

        def keep_signing() -> None:
            while not stop.is_set():
                try:
                    sign_with(stubs[len(signed) % 2], identity, old, f"during {len(signed)}")
                    signed.append(1)
                except Exception as exc:  # reported below
                    errors.append(repr(exc))
                    return

        signer = threading.Thread(target=keep_signing)
        signer.start()
        try:
            result = run_keys(rolled, "rewrap-kek", "--batch-size", "2")
        finally:
            stop.set()
            signer.join(timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "from KEK 'kek-a': 8" in result.stdout  # 7 CA/OCSP/TSA keys + the old credential
        assert "already under 'kek-b': 1" in result.stdout
        assert KEK_A not in result.stdout + result.stderr
        assert errors == [] and signed
        for stub in stubs:
            sign_with(stub, identity, old, "after the rewrap")
            sign_with(stub, identity, new, "after the rewrap")

    assert set(kek_ids_in_database(database_url)) == {"kek-b"}
    entries = rewrap_entries(database_url)
    assert {e["outcome"] for e in entries} == {"success"}
    moved = [k for e in entries for k in e["rewrapped"]]  # type: ignore[attr-defined]
    assert len(moved) == 8 and {k["from_kek_id"] for k in moved} == {"kek-a"}
    assert {e["to_kek_id"] for e in entries} == {"kek-b"}

    # Step 3: kek-a dropped. Old and new credentials sign; the audit chain is intact.
    with start_service("egov_keys", env=only_b) as service, service.open_channel() as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        sign_with(stub, identity, old, "kek-a dropped")
        sign_with(stub, identity, new, "kek-a dropped")
        verdict = stub.VerifyAuditLog(
            keys_pb2.VerifyAuditLogRequest(), metadata=signing_metadata(identity)
        )
        assert verdict.intact, verdict.problem

    again = run_keys(only_b, "rewrap-kek")
    assert again.returncode == 0, again.stderr
    assert "re-wrapped under KEK 'kek-b': 0" in again.stdout
    assert len(rewrap_entries(database_url)) == len(entries)

    # A replica given another KEK (kek-b forgotten) refuses to start and names the KEK id.
    refused = run_keys(
        {
            **base,
            "EGOV_KEYS_SOFTWARE_KEK": new_kek(),
            "EGOV_KEYS_SOFTWARE_KEK_ID": "kek-c",
            "EGOV_KEYS_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
            "EGOV_KEYS_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
            "EGOV_KEYS_DATA_DIR": str(tmp_path / "refused"),
        }
    )
    assert refused.returncode == 3
    assert "KEK_UNKNOWN" in refused.stderr and "'kek-b' (9 keys)" in refused.stderr
    assert "Traceback" not in refused.stderr
