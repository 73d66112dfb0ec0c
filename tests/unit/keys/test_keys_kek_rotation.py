"""Rotating the software KEK: the old KEK keeps opening old blobs while replicas roll over,
rewrap-kek moves every blob to the new one (audited, restartable, idempotent), and after the old
KEK is dropped a blob still under it is named, not a crypto traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from egov_common.clock import FixedClock
from egov_common.errors import EgovError
from egov_common.settings import SettingsError, load_settings
from egov_keys.__main__ import main
from egov_keys.adapters.software_custody import KekMismatch, SoftwareCustody, blob_kek_id
from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, verify_digest_signature
from egov_keys.domain.custody import CustodyBackend, KeyRole
from egov_keys.domain.model import Credential, RevocationReason
from egov_keys.kek_rotation import REWRAP_ACTION, RewrapReport, rewrap_software_keys
from egov_keys.runtime import KeysRuntime
from egov_keys.settings import KeysSettings
from egov_keys.storage.repository import KeysRepository
from keys_world import ADMIN, ANON, LocalIdentity, build_keys, new_kek, sha256
from test_keys_sole_control import authorize, create_person, reason_of, sign

KEK_A, KEK_B = new_kek(), new_kek()
#: root, two issuing CAs, three OCSP signers, the TSA.
CA_KEYS = 7


def kek_a() -> dict[str, str]:
    return {"software_kek": KEK_A, "software_kek_id": "kek-a"}


def kek_b_with_a() -> dict[str, str]:
    return {
        "software_kek": KEK_B,
        "software_kek_id": "kek-b",
        "software_previous_keks": f"kek-a={KEK_A}",
    }


def kek_b_only() -> dict[str, str]:
    return {"software_kek": KEK_B, "software_kek_id": "kek-b"}


@pytest.fixture
def open_runtimes() -> Iterator[list[KeysRuntime]]:
    runtimes: list[KeysRuntime] = []
    yield runtimes
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def start(sqlite_url, identity, clock, open_runtimes):
    """start(**settings) -> a keys runtime on the test's database (closed at the end)."""

    def start_runtime(**overrides: str) -> KeysRuntime:
        runtime = build_keys(sqlite_url, identity, clock, **overrides)
        open_runtimes.append(runtime)
        return runtime

    return start_runtime


def stored_blobs(url: str) -> dict[str, bytes]:
    """key id -> blob of every key in the database, read with plain SQL."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT key_id, key_blob FROM authorities UNION ALL "
                "SELECT key_id, key_blob FROM credentials"
            )
        ).all()
    engine.dispose()
    return {str(k): bytes(b) for k, b in rows}


def named_kek(blob: bytes) -> str:
    # Read the header by hand (b"EGK1", a length byte, the id) rather than with the code tested.
    assert blob[:4] == b"EGK1"
    return blob[5 : 5 + blob[4]].decode()


def signs(runtime: KeysRuntime, identity: LocalIdentity, credential: Credential) -> None:
    digest = sha256(f"document for {credential.credential_id}".encode())
    sad = authorize(runtime.credentials, identity, credential, [digest])
    (signature,) = sign(runtime.credentials, credential, sad, [digest])
    public = x509.load_der_x509_certificate(credential.certificate_der).public_key()
    verify_digest_signature(
        public, signature, digest, HashAlgorithm.SHA256, credential.key.algorithm.default_scheme
    )


def rewrap(runtime: KeysRuntime, clock: FixedClock, batch_size: int = 2) -> RewrapReport:
    custody = runtime.custodies[CustodyBackend.SOFTWARE]
    assert isinstance(custody, SoftwareCustody)
    return rewrap_software_keys(runtime.repository, custody, clock, batch_size=batch_size)


def three_credentials_under_a(start, identity) -> list[Credential]:
    """Two active credentials (P-256, RSA) and a revoked one, all sealed under kek-a."""
    old = start(**kek_a())
    made = [
        create_person(old, identity, "p256"),
        create_person(old, identity, "rsa", KeyAlgorithm.RSA_3072),
        create_person(old, identity, "revoked"),
    ]
    old.credentials.revoke(
        ANON, made[2].credential_id, RevocationReason.SUPERSEDED, identity.person()
    )
    for credential in made[:2]:
        signs(old, identity, credential)
    old.close()
    return made


def test_a_credential_sealed_under_the_old_kek_signs_once_the_new_kek_is_rolled_out(
    start, identity
):
    old = start(**kek_a())
    credential = create_person(old, identity, "before")
    old.close()

    rolled = start(**kek_b_with_a())
    signs(rolled, identity, credential)
    # New keys are sealed under the current KEK only.
    fresh = create_person(rolled, identity, "after")
    assert blob_kek_id(fresh.key.blob) == "kek-b"
    signs(rolled, identity, fresh)
    assert blob_kek_id(rolled.credentials.get(credential.credential_id).key.blob) == "kek-a"


def test_rewrap_moves_every_blob_to_the_new_kek_and_the_old_kek_can_then_be_dropped(
    start, identity, clock, sqlite_url
):
    credentials = three_credentials_under_a(start, identity)
    before = stored_blobs(sqlite_url)
    assert {named_kek(b) for b in before.values()} == {"kek-a"}

    rolled = start(**kek_b_with_a())
    report = rewrap(rolled, clock)
    assert report.ok
    assert dict(report.rewrapped) == {"kek-a": CA_KEYS + 3}
    assert report.already_current == 0
    after = stored_blobs(sqlite_url)
    assert after.keys() == before.keys()
    assert {named_kek(b) for b in after.values()} == {"kek-b"}
    # Replicas that loaded the old blobs keep signing with them (they still hold kek-a).
    signs(rolled, identity, credentials[0])
    rolled.close()

    # kek-a dropped: the CA keys pass the start-up self-test, credentials sign under kek-b.
    dropped = start(**kek_b_only())
    for credential in credentials[:2]:
        signs(dropped, identity, credential)
    assert dropped.trust.crl("natural-person")
    assert reason_of(lambda: signs(dropped, identity, credentials[2])).startswith(
        "FAILED_PRECONDITION/CREDENTIAL_"
    )  # revoked: refused as before, not a KEK error


def test_the_database_holds_no_private_key_in_clear_after_a_rewrap(
    start, identity, clock, sqlite_url
):
    credentials = three_credentials_under_a(start, identity)
    rolled = start(**kek_b_with_a())
    rewrap(rolled, clock)
    custody = rolled.custodies[CustodyBackend.SOFTWARE]
    assert isinstance(custody, SoftwareCustody)
    keys = [a.key for a in rolled.repository.authorities().values()]
    keys += [rolled.credentials.get(c.credential_id).key for c in credentials]
    assert {blob_kek_id(k.blob) for k in keys} == {"kek-b"}
    secrets_to_find = []
    for ref in keys:
        private = custody._open(ref)  # test-only peek at the decrypted key
        secrets_to_find.append(
            private.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    rolled.close()
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    content = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        content += wal.read_bytes()
    for secret in secrets_to_find:
        assert secret not in content


def test_rewrap_is_audited_per_batch_without_key_material_and_the_chain_verifies(
    start, identity, clock, sqlite_url
):
    three_credentials_under_a(start, identity)
    old_blobs = stored_blobs(sqlite_url)
    rolled = start(**kek_b_with_a())
    report = rewrap(rolled, clock, batch_size=4)
    entries = [r for r in rolled.repository.audit_records() if r.action == REWRAP_ACTION]
    # 7 CA keys in pages of 4, then 3 credential keys: one entry per page.
    assert len(entries) == report.audit_entries == 3
    moved: dict[str, str] = {}
    for entry in entries:
        assert entry.outcome == "success"
        assert entry.actor == "rewrap-kek"
        details = json.loads(entry.details_json)
        assert details["to_kek_id"] == "kek-b"
        assert details["failed"] == []
        moved.update({k["key_id"]: k["from_kek_id"] for k in details["rewrapped"]})
    assert moved == dict.fromkeys(old_blobs, "kek-a")
    new_blobs = stored_blobs(sqlite_url)
    for entry in entries:
        for blob in [*old_blobs.values(), *new_blobs.values()]:
            for text in (blob.hex(), base64.b64encode(blob).decode(), blob[-40:].hex()):
                assert text not in entry.details_json
    verdict = rolled.credentials.verify_audit(ADMIN)
    assert verdict.intact, verdict.problem


def test_running_rewrap_again_changes_nothing(start, identity, clock, sqlite_url):
    three_credentials_under_a(start, identity)
    rolled = start(**kek_b_with_a())
    rewrap(rolled, clock)
    blobs, head = stored_blobs(sqlite_url), rolled.repository.audit_head()

    again = rewrap(rolled, clock)
    assert again.ok
    assert sum(again.rewrapped.values()) == 0
    assert again.already_current == CA_KEYS + 3
    assert again.audit_entries == 0
    assert stored_blobs(sqlite_url) == blobs
    assert rolled.repository.audit_head() == head


def test_a_rewrap_stopped_midway_leaves_every_key_usable_and_a_rerun_finishes(
    start, identity, clock, sqlite_url, monkeypatch
):
    credentials = three_credentials_under_a(start, identity)
    rolled = start(**kek_b_with_a())
    real = KeysRepository.replace_key_blobs
    calls = []

    def crash_in_the_third_transaction(self, table, changes, audit, now):
        calls.append(table)
        if len(calls) == 3:
            # The blobs of this page are swapped inside the transaction, then the process dies.
            def dies(done):
                raise KeyboardInterrupt("killed")

            return real(self, table, changes, dies, now)
        return real(self, table, changes, audit, now)

    monkeypatch.setattr(KeysRepository, "replace_key_blobs", crash_in_the_third_transaction)
    with pytest.raises(KeyboardInterrupt):
        rewrap(rolled, clock, batch_size=2)
    monkeypatch.undo()
    halfway = [named_kek(b) for b in stored_blobs(sqlite_url).values()]
    assert halfway.count("kek-b") == 4 and halfway.count("kek-a") == CA_KEYS + 3 - 4
    rolled.close()

    # Every key works with both KEKs given; without kek-a the service refuses to start.
    both = start(**kek_b_with_a())
    for credential in credentials[:2]:
        signs(both, identity, credential)
    with pytest.raises(EgovError) as info:
        start(**kek_b_only())
    assert info.value.reason == "KEK_UNKNOWN"
    assert "'kek-a' (6 keys)" in str(info.value)

    finished = rewrap(both, clock, batch_size=2)
    assert finished.ok
    assert dict(finished.rewrapped) == {"kek-a": CA_KEYS + 3 - 4}
    assert finished.already_current == 4
    assert {named_kek(b) for b in stored_blobs(sqlite_url).values()} == {"kek-b"}
    assert both.credentials.verify_audit(ADMIN).intact
    both.close()
    signs(start(**kek_b_only()), identity, credentials[1])


def test_starting_with_a_blob_under_an_unknown_kek_names_the_kek(start, identity):
    create_person(start(**kek_a()), identity, "one")
    with pytest.raises(EgovError) as info:
        start(**kek_b_only())
    assert (info.value.code.value, info.value.reason) == ("FAILED_PRECONDITION", "KEK_UNKNOWN")
    message = str(info.value)
    assert "'kek-a' (8 keys)" in message
    assert "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS" in message
    assert KEK_A not in message and KEK_B not in message


def test_signing_with_a_key_under_a_kek_this_replica_lacks_is_failed_precondition(start, identity):
    # One replica still runs with kek-a alone while another already seals under kek-b.
    behind = start(**kek_a())
    ahead = start(**kek_b_with_a())
    credential = create_person(ahead, identity, "sealed-under-b")
    digest = sha256(b"contract")
    sad = authorize(behind.credentials, identity, credential, [digest])
    assert (
        reason_of(lambda: sign(behind.credentials, credential, sad, [digest]))
        == "FAILED_PRECONDITION/KEK_UNKNOWN"
    )
    outcomes = [
        r.outcome for r in behind.repository.audit_records() if r.action == "signature.batch"
    ]
    assert outcomes[-1] == "failure:KEK_UNKNOWN"


def test_a_blob_does_not_open_once_its_kek_id_or_key_id_is_edited():
    custody = SoftwareCustody(base64.b64decode(KEK_B), "kek-b", {"kek-a": base64.b64decode(KEK_A)})
    old = SoftwareCustody(base64.b64decode(KEK_A), "kek-a")
    key = old.generate("owner-1", KeyAlgorithm.ECDSA_P256, KeyRole.OWNER)
    digest = sha256(b"x")
    rewrapped = custody.rewrap(key)
    assert blob_kek_id(rewrapped.blob) == "kek-b" and rewrapped.blob != key.blob
    assert rewrapped.public_key_der == key.public_key_der
    custody.sign_digest(
        rewrapped, digest, HashAlgorithm.SHA256, KeyAlgorithm.ECDSA_P256.default_scheme
    )
    # The AAD binds the KEK id: a blob relabelled to the other KEK's id does not open.
    relabelled = rewrapped.blob.replace(b"kek-b", b"kek-a", 1)
    for edited in (
        type(rewrapped)(**{**_fields(rewrapped), "blob": relabelled}),
        type(rewrapped)(**{**_fields(rewrapped), "key_id": "owner-2"}),
    ):
        with pytest.raises(KekMismatch):
            custody.sign_digest(
                edited, digest, HashAlgorithm.SHA256, KeyAlgorithm.ECDSA_P256.default_scheme
            )


def _fields(key) -> dict[str, object]:
    return {name: getattr(key, name) for name in key.__dataclass_fields__}


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def keys_env(monkeypatch, sqlite_url):
    """Set EGOV_KEYS_* for an in-process ``python -m egov_keys``."""
    for variable in ("SOFTWARE_KEK", "SOFTWARE_KEK_FILE", "SOFTWARE_PREVIOUS_KEKS", "KEY_BACKEND"):
        monkeypatch.delenv(f"EGOV_KEYS_{variable}", raising=False)
    monkeypatch.setenv("EGOV_KEYS_DATABASE_URL", sqlite_url)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"EGOV_KEYS_{name.upper()}", value)

    return set_env


def test_rewrap_kek_command_prints_counts_per_old_kek_and_a_rerun_is_a_no_op(
    start, identity, keys_env, capsys, sqlite_url
):
    three_credentials_under_a(start, identity)
    keys_env(**kek_b_with_a())
    assert main(["rewrap-kek", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "re-wrapped under KEK 'kek-b': 10" in out
    assert "from KEK 'kek-a': 10" in out
    assert "7 CA/OCSP/TSA keys, 3 credential keys" in out
    assert KEK_A not in out and KEK_B not in out

    assert main(["rewrap-kek"]) == 0
    out = capsys.readouterr().out
    assert "re-wrapped under KEK 'kek-b': 0" in out
    assert "already under 'kek-b': 10" in out


def test_a_wrong_previous_kek_is_reported_with_the_key_ids_and_nothing_moves(
    start, identity, keys_env, capsys, sqlite_url
):
    credentials = three_credentials_under_a(start, identity)
    before = stored_blobs(sqlite_url)
    keys_env(software_kek=KEK_B, software_kek_id="kek-b", software_previous_keks=f"kek-a={KEK_B}")
    assert main(["rewrap-kek"]) == 1
    captured = capsys.readouterr()
    assert "could not be re-wrapped: 10" in captured.out
    for credential in credentials:
        assert f"{credential.key.key_id}: does not open under the KEK given as 'kek-a'" in (
            captured.out
        )
    assert "run this again" in captured.err
    assert KEK_A not in captured.out + captured.err and KEK_B not in captured.out + captured.err
    assert stored_blobs(sqlite_url) == before
    failures = [
        r for r in KeysRepository.from_url(sqlite_url).audit_records() if r.action == REWRAP_ACTION
    ]
    assert failures and {r.outcome for r in failures} == {"failure:KEK_UNWRAP_FAILED"}


def test_a_blob_under_a_kek_not_given_at_all_is_reported_by_key_id(
    start, identity, keys_env, capsys
):
    start(**kek_a()).close()  # the CA hierarchy under kek-a
    credential = create_person(start(**kek_b_with_a()), identity, "under-b")
    keys_env(
        software_kek=new_kek(), software_kek_id="kek-c", software_previous_keks=f"kek-a={KEK_A}"
    )
    assert main(["rewrap-kek"]) == 1
    out = capsys.readouterr().out
    assert f"{credential.key.key_id}: is sealed under KEK id 'kek-b'" in out
    assert "re-wrapped under KEK 'kek-c': 7" in out  # the CA keys were under kek-a


def test_rewrap_kek_with_the_pkcs11_backend_says_the_kek_lives_in_the_hsm(keys_env, capsys):
    keys_env(key_backend="pkcs11")
    assert main(["rewrap-kek"]) == 2
    err = capsys.readouterr().err
    assert "lives in the HSM" in err and "'egov-keys-kek'" in err


def test_rewrap_kek_refuses_unknown_arguments(keys_env, capsys):
    keys_env(software_kek=KEK_B)
    assert main(["rewrap-kek", "--batch-size", "0"]) == 2
    assert main(["rewrap-kek", "--everything"]) == 2


# -- settings ----------------------------------------------------------------------------------


def settings_from_env(monkeypatch, **values: str) -> KeysSettings:
    for name, value in values.items():
        monkeypatch.setenv(f"EGOV_KEYS_{name.upper()}", value)
    return load_settings(KeysSettings, "KEYS")


def test_previous_keks_are_read_from_the_variable_or_a_file(monkeypatch, tmp_path):
    k0, k1 = new_kek(), new_kek()
    settings = settings_from_env(
        monkeypatch,
        software_kek=KEK_B,
        software_kek_id="kek-2",
        software_previous_keks=f" kek-0={k0}, kek-1={k1} ",
    )
    assert settings.previous_keks() == {
        "kek-0": base64.b64decode(k0),
        "kek-1": base64.b64decode(k1),
    }
    monkeypatch.delenv("EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS")
    secret = tmp_path / "previous-keks"
    secret.write_text(f"kek-0={k0}\nkek-1={k1}\n")
    settings = settings_from_env(monkeypatch, software_previous_keks_file=str(secret))
    assert set(settings.previous_keks()) == {"kek-0", "kek-1"}
    # Never printed: the start-up log and repr show the secret as masked.
    for shown in (repr(settings), settings.model_dump_json()):
        assert k0 not in shown and k1 not in shown and KEK_B not in shown


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{k}", "entry 1 is not id=base64"),
        ("kek-0={k},kek-0={k}", "'kek-0' is given twice"),
        ("kek-2={k}", "'kek-2' is the current EGOV_KEYS_SOFTWARE_KEK_ID"),
        ("kek-0=AAAA", "the KEK 'kek-0' must be 32 bytes (AES-256) in base64"),
        ("kek-0={k},kek-1=not base64!", "the KEK 'kek-1' is not base64"),
    ],
)
def test_a_malformed_previous_kek_names_the_variable_and_entry_but_not_the_key(
    monkeypatch, value, problem
):
    key = new_kek()
    settings = settings_from_env(
        monkeypatch,
        software_kek=KEK_B,
        software_kek_id="kek-2",
        software_previous_keks=value.format(k=key),
    )
    with pytest.raises(SettingsError) as info:
        settings.previous_keks()
    assert info.value.variable == "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS"
    assert info.value.problem == problem
    assert key not in str(info.value)


def test_the_pkcs11_pin_is_read_like_every_other_secret(monkeypatch, tmp_path):
    # From a mounted Secret, with the newline that `kubectl create secret --from-file` keeps.
    pin_file = tmp_path / "pin"
    pin_file.write_text("4821\n")
    monkeypatch.delenv("EGOV_KEYS_PKCS11_PIN", raising=False)
    settings = settings_from_env(monkeypatch, pkcs11_pin_file=str(pin_file))
    assert settings.pin() == "4821"
    # The variable wins over the file, trimmed the same way.
    assert settings_from_env(monkeypatch, pkcs11_pin=" 9913 ").pin() == "9913"

    monkeypatch.delenv("EGOV_KEYS_PKCS11_PIN")
    pin_file.unlink()
    with pytest.raises(SettingsError) as info:
        settings_from_env(monkeypatch).pin()
    assert info.value.variable == "EGOV_KEYS_PKCS11_PIN_FILE"
    monkeypatch.delenv("EGOV_KEYS_PKCS11_PIN_FILE")
    with pytest.raises(SettingsError) as info:
        settings_from_env(monkeypatch).pin()
    assert info.value.variable == "EGOV_KEYS_PKCS11_PIN"
    assert "required" in info.value.problem


def test_rewrap_kek_with_the_pkcs11_backend_still_moves_the_software_blobs(
    start, identity, keys_env, capsys
):
    # A deployment that moved to an HSM but keeps older software keys (and their KEK).
    three_credentials_under_a(start, identity)
    keys_env(key_backend="pkcs11", **kek_b_with_a())
    assert main(["rewrap-kek"]) == 0
    out = capsys.readouterr().out
    assert "from KEK 'kek-a': 10" in out
    assert "wrapped by the HSM-resident KEK ('egov-keys-kek') were left as they are" in out
