"""Bad input gets a precise status and signs nothing; the audit chain detects tampering; keys
are never stored in clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from egov_common.auth import Caller, CallerKind
from egov_common.errors import EgovError
from egov_keys.domain.algorithms import HashAlgorithm
from egov_keys.storage.repository import KeysRepository
from keys_world import ADMIN, ANON, PERSON_ID, SIGNING, sha256
from test_keys_sole_control import authorize, create_person, reason_of


def successes(keys) -> list[str]:
    return [
        r.action
        for r in keys.repository.audit_records()
        if r.action in ("signature.batch", "sad.authorize") and r.outcome == "success"
    ]


def test_unknown_credential_is_not_found(keys, identity):
    assert (
        reason_of(
            lambda: keys.credentials.authorize(
                ANON,
                credential_id="cred_nope",
                hashes=[sha256(b"a")],
                hash_algorithm=HashAlgorithm.SHA256,
                num_signatures=1,
                proof_token=identity.person(),
                description="",
            )
        )
        == "NOT_FOUND/CREDENTIAL_NOT_FOUND"
    )
    assert (
        reason_of(
            lambda: keys.credentials.sign_hash(
                SIGNING,
                credential_id="cred_nope",
                sad="sad1.x",
                hashes=[sha256(b"a")],
                hash_algorithm=HashAlgorithm.SHA256,
                scheme=None,
            )
        )
        == "NOT_FOUND/CREDENTIAL_NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("hashes", "algorithm", "expected"),
    [
        ([b"short"], HashAlgorithm.SHA256, "INVALID_ARGUMENT/HASH_LENGTH_MISMATCH"),
        ([bytes(32)], HashAlgorithm.SHA384, "INVALID_ARGUMENT/HASH_LENGTH_MISMATCH"),
        ([bytes(64)], HashAlgorithm.SHA256, "INVALID_ARGUMENT/HASH_LENGTH_MISMATCH"),
        ([], HashAlgorithm.SHA256, "INVALID_ARGUMENT/HASHES_MISSING"),
        ([bytes(32)] * 101, HashAlgorithm.SHA256, "INVALID_ARGUMENT/BATCH_TOO_LARGE"),
        ([bytes(32)], None, "INVALID_ARGUMENT/HASH_ALGORITHM_MISSING"),
    ],
)
def test_bad_hashes_are_refused_and_nothing_is_signed(keys, identity, hashes, algorithm, expected):
    credential = create_person(keys, identity)
    assert (
        reason_of(
            lambda: keys.credentials.authorize(
                ANON,
                credential_id=credential.credential_id,
                hashes=hashes,
                hash_algorithm=algorithm,
                num_signatures=len(hashes),
                proof_token=identity.person(),
                description="",
            )
        )
        == expected
    )
    assert (
        reason_of(
            lambda: keys.credentials.sign_hash(
                SIGNING,
                credential_id=credential.credential_id,
                sad="sad1.x",
                hashes=hashes,
                hash_algorithm=algorithm,
                scheme=None,
            )
        )
        == expected
    )
    assert successes(keys) == []


def test_num_signatures_must_match(keys, identity):
    credential = create_person(keys, identity)
    assert (
        reason_of(
            lambda: keys.credentials.authorize(
                ANON,
                credential_id=credential.credential_id,
                hashes=[sha256(b"a")],
                hash_algorithm=HashAlgorithm.SHA256,
                num_signatures=2,
                proof_token=identity.person(),
                description="",
            )
        )
        == "INVALID_ARGUMENT/NUM_SIGNATURES_MISMATCH"
    )


def test_wrong_signature_algorithm_for_key_is_refused(keys, identity):
    from egov_keys.domain.algorithms import SignatureScheme

    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    assert (
        reason_of(
            lambda: keys.credentials.sign_hash(
                SIGNING,
                credential_id=credential.credential_id,
                sad=sad,
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                scheme=SignatureScheme.RSA_PSS,
            )
        )
        == "INVALID_ARGUMENT/ALGORITHM_MISMATCH"
    )


def test_audit_chain_verifies_and_detects_an_edited_entry(keys, identity, sqlite_url):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)
    keys.credentials.sign_hash(
        SIGNING,
        credential_id=credential.credential_id,
        sad=sad,
        hashes=hashes,
        hash_algorithm=HashAlgorithm.SHA256,
        scheme=None,
    )
    verdict = keys.credentials.verify_audit(ADMIN)
    assert verdict.intact and verdict.entries_checked >= 9
    target = next(r for r in keys.repository.audit_records() if r.action == "sad.authorize")
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_log SET actor = 'someone else' WHERE sequence = :s"),
            {"s": target.sequence},
        )
    verdict = keys.credentials.verify_audit(ADMIN)
    assert not verdict.intact
    assert verdict.first_bad_sequence == target.sequence
    assert verdict.problem == "content does not match its hash"


@pytest.mark.parametrize("which", ["middle", "last"])
def test_audit_chain_detects_a_removed_entry(keys, identity, sqlite_url, which):
    create_person(keys, identity)
    records = keys.repository.audit_records()
    victim = records[len(records) // 2] if which == "middle" else records[-1]
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE sequence = :s"), {"s": victim.sequence})
    verdict = keys.credentials.verify_audit(ADMIN)
    assert not verdict.intact
    assert verdict.first_bad_sequence == victim.sequence


def test_audit_log_is_only_for_auditors(keys):
    assert reason_of(lambda: keys.credentials.verify_audit(ANON)) == (
        "PERMISSION_DENIED/CALLER_NOT_ALLOWED"
    )
    auditor = Caller(CallerKind.SERVICE, "auditor", peer_service="auditor")
    assert keys.credentials.verify_audit(auditor).intact


def test_a_national_id_in_a_description_never_reaches_the_audit_log(keys, identity):
    # The chain cannot be edited afterwards: an identifier written there stays for good.
    credential = create_person(keys, identity)
    dashed = f"{PERSON_ID[0]}-{PERSON_ID[1:5]}-{PERSON_ID[5:10]}-{PERSON_ID[10:12]}-{PERSON_ID[12]}"
    keys.credentials.authorize(
        ANON,
        credential_id=credential.credential_id,
        hashes=[sha256(b"a")],
        hash_algorithm=HashAlgorithm.SHA256,
        num_signatures=1,
        proof_token=identity.person(),
        description=f"consent form of {PERSON_ID} ({dashed})",
    )
    [entry] = [r for r in keys.repository.audit_records() if r.action == "sad.authorize"]
    description = json.loads(entry.details_json)["description"]
    assert description.startswith("consent form of ")
    assert PERSON_ID not in description.replace("-", "")
    assert PERSON_ID[5:10] not in description


@pytest.mark.parametrize("token", ["9" * 19, "²", "١٢", "-1", "12 "])
def test_an_audit_page_token_not_from_a_response_is_invalid_argument(keys, token):
    # Beyond a 64-bit sequence, or digits int() reads differently: refused, never INTERNAL.
    assert (
        reason_of(
            lambda: keys.credentials.audit_events(
                ADMIN, credential_id="", page_size=0, page_token=token
            )
        )
        == "INVALID_ARGUMENT/PAGE_TOKEN_INVALID"
    )


def test_operation_fails_when_audit_cannot_be_written(keys, identity, monkeypatch):
    credential = create_person(keys, identity)
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, credential, hashes)

    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT INTO audit_log", {}, Exception("disk full"))

    monkeypatch.setattr(KeysRepository, "_append", broken)
    with pytest.raises(EgovError) as info:
        keys.credentials.sign_hash(
            SIGNING,
            credential_id=credential.credential_id,
            sad=sad,
            hashes=hashes,
            hash_algorithm=HashAlgorithm.SHA256,
            scheme=None,
        )
    assert (info.value.code.value, info.value.reason) == ("UNAVAILABLE", "AUDIT_UNAVAILABLE")
    monkeypatch.undo()
    # The SAD was not spent either: the spend and its audit entry are one transaction.
    assert (
        keys.repository.sad(__import__("hashlib").sha256(sad.encode()).hexdigest()).spent_at is None
    )


def test_database_holds_no_private_key_in_clear(keys, identity, sqlite_url, tmp_path):
    credential = create_person(keys, identity)
    from egov_keys.domain.custody import CustodyBackend

    custody = keys.custodies[CustodyBackend.SOFTWARE]
    secrets_to_find = []
    for ref in [credential.key, *(a.key for a in keys.trust.authorities().values())]:
        private = custody._open(ref)  # test-only peek at the decrypted key
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        scalar = private.private_numbers().private_value.to_bytes(
            32 if ref.algorithm.value == "ECDSA_P256" else 48, "big"
        )
        secrets_to_find += [der, scalar]
    keys.repository.dispose()  # checkpoint: everything in the main file
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    blob = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        blob += wal.read_bytes()
    assert len(blob) > 10_000
    for secret in secrets_to_find:
        assert secret not in blob


def test_a_key_blob_moved_to_another_credential_does_not_sign(keys, identity, sqlite_url):
    victim = create_person(keys, identity, key="victim")
    attacker = create_person(keys, identity, key="attacker")
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        blob = conn.execute(
            sa.text("SELECT key_blob FROM credentials WHERE credential_id = :c"),
            {"c": victim.credential_id},
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE credentials SET key_blob = :b WHERE credential_id = :c"),
            {"b": blob, "c": attacker.credential_id},
        )
    engine.dispose()
    hashes = [sha256(b"a")]
    sad = authorize(keys.credentials, identity, attacker, hashes)
    # AES-GCM's associated data binds the blob to its own key id: it does not open elsewhere.
    assert (
        reason_of(
            lambda: keys.credentials.sign_hash(
                SIGNING,
                credential_id=attacker.credential_id,
                sad=sad,
                hashes=hashes,
                hash_algorithm=HashAlgorithm.SHA256,
                scheme=None,
            )
        )
        == "UNAVAILABLE/SIGNING_FAILED"
    )
    outcomes = [r.outcome for r in keys.repository.audit_records() if r.action == "signature.batch"]
    assert outcomes[-1] == "failure:SIGNING_FAILED"


def test_verifying_the_log_while_other_calls_append_finds_it_intact(keys, identity, monkeypatch):
    # The head and the entries are read from one snapshot: an entry committed by another call
    # after the head was read is no tampering (it used to be reported as "chain does not end
    # at the recorded head").
    import egov_keys.credentials

    credential = create_person(keys, identity)
    verify_chain = egov_keys.credentials.verify_chain
    appended = []

    def verify_while_someone_appends(entries, head_sequence, head_hash):
        authorize(keys.credentials, identity, credential, [sha256(b"meanwhile")])
        appended.append(keys.repository.audit_head()[0])
        return verify_chain(entries, head_sequence, head_hash)

    monkeypatch.setattr(egov_keys.credentials, "verify_chain", verify_while_someone_appends)
    verdict = keys.credentials.verify_audit(ADMIN)
    assert verdict.intact, verdict.problem
    assert verdict.entries_checked == appended[0] - 1  # up to the head it read, not beyond
    monkeypatch.undo()
    assert keys.credentials.verify_audit(ADMIN).entries_checked == appended[0]


def test_an_entry_written_behind_the_heads_back_is_reported(keys, identity, sqlite_url):
    # An entry past the recorded head that no append wrote (the head row did not move) is
    # tampering, however well it links and hashes.
    from egov_keys.domain.audit import entry_hash
    from egov_keys.storage.repository import to_us

    create_person(keys, identity)
    last = keys.repository.audit_records()[-1]
    forged = {
        "sequence": last.sequence + 1,
        "occurred_at_us": to_us(last.occurred_at),
        "action": "signature.batch",
        "actor": "service:signing",
        "credential_id": last.credential_id,
        "outcome": "success",
        "details_json": "{}",
        "previous_hash": last.entry_hash,
    }
    forged["entry_hash"] = entry_hash(
        last.entry_hash,
        last.sequence + 1,
        last.occurred_at,
        "signature.batch",
        "service:signing",
        last.credential_id,
        "success",
        "{}",
    )
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (sequence, occurred_at_us, action, actor, credential_id,"
                " outcome, details_json, previous_hash, entry_hash) VALUES (:sequence,"
                " :occurred_at_us, :action, :actor, :credential_id, :outcome, :details_json,"
                " :previous_hash, :entry_hash)"
            ),
            forged,
        )
    verdict = keys.credentials.verify_audit(ADMIN)
    assert not verdict.intact
    assert verdict.problem == "chain does not end at the recorded head"
