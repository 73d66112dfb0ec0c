"""KEK rotation in the domain and the subcommands: values sealed under a previous KEK still open,
rewrap-kek moves them to the current one, an unknown KEK is a clear error, never a crypto
traceback; rotate-signing-key replaces the signing key at once."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from egov_common.clock import FixedClock
from egov_common.db import make_engine, migrations_dir, upgrade_to_head
from egov_common.errors import Code, EgovError, Unauthenticated
from egov_common.settings import SettingsError, load_settings
from egov_identity.__main__ import main
from egov_identity.adapters.population import SyntheticPopulation
from egov_identity.domain import model as m
from egov_identity.domain.kek_rotation import rewrap_sealed_values
from egov_identity.domain.secrets_box import (
    KekUnknown,
    SealedValueUnreadable,
    SecretBox,
    kek_id,
)
from egov_identity.domain.service import IdentityConfig, IdentityService
from egov_identity.settings import IdentitySettings
from egov_identity.storage import tables as t
from identity_world import (
    ISSUER,
    PASSWORD,
    World,
    current_totp,
    enrol_login,
    register_portal,
)

MIGRATIONS = "egov_identity.storage.migrations"
OLD, NEW, STRANGER = b"o" * 32, b"n" * 32, b"s" * 32


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """``main`` installs the service's JSON log handler on stderr (captured here): undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _v1_blob(kek: bytes, plaintext: bytes, context: str) -> bytes:
    """A value as identity sealed it before KEK ids (version 1)."""
    nonce = secrets.token_bytes(12)
    return b"\x01" + nonce + AESGCM(kek).encrypt(nonce, plaintext, context.encode())


def _service(url: str, clock: FixedClock, population: SyntheticPopulation, kek: bytes,
             previous: tuple[bytes, ...] = ()) -> IdentityService:
    config = IdentityConfig(issuer=ISSUER, kek=kek, previous_keks=previous,
                            argon2_time_cost=1, argon2_memory_kib=8)
    return IdentityService(config, make_engine(url), clock, registry=population,
                           companies=population, kyc=population)


def _restart(world: World, url: str, kek: bytes, previous: tuple[bytes, ...] = ()) -> World:
    """A new process on the same database and clock with other KEK settings."""
    world.service.engine.dispose()
    service = _service(url, world.clock, world.population, kek, previous)
    try:
        service.check_sealed_values()
    except BaseException:
        service.engine.dispose()
        raise
    return World(service, world.clock, world.population)


def _id_token(world: World, username: str, secret: bytes | None = None,
              client_id: str = "portal") -> m.TokenResponse:
    s = world.service
    login = s.login(client_id, username, PASSWORD,
                    current_totp(world, secret) if secret else "")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    auth = s.authorize(login_session_id=login.login_session_id, client_id=client_id,
                       redirect_uri="https://portal.test/cb", scope="openid profile",
                       code_challenge=challenge, code_challenge_method="S256")
    return s.token(m.TokenRequest(grant_type="authorization_code", client_id=client_id,
                                  code=auth.code, redirect_uri="https://portal.test/cb",
                                  code_verifier=verifier))


@pytest.fixture
def old_world(sqlite_url: str, population: SyntheticPopulation) -> World:
    upgrade_to_head(sqlite_url, MIGRATIONS)
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    return World(_service(sqlite_url, clock, population, OLD), clock, population)


# ---------------------------------------------------------------- the sealed-value format

def test_a_sealed_value_names_its_kek_and_opens_under_a_previous_one() -> None:
    blob = SecretBox(OLD).seal(b"seed", "p-1")
    assert SecretBox.kek_id_of(blob) == kek_id(OLD) == hashlib.sha256(OLD).hexdigest()[:16]
    rotated = SecretBox(NEW, [OLD])
    assert rotated.open_with_id(blob, "p-1") == (b"seed", kek_id(OLD))
    assert SecretBox.kek_id_of(rotated.seal(b"seed", "p-1")) == kek_id(NEW)


def test_a_value_sealed_before_kek_ids_still_opens_with_whichever_kek_sealed_it() -> None:
    blob = _v1_blob(OLD, b"seed", "p-1")
    assert SecretBox.kek_id_of(blob) is None
    assert SecretBox(NEW, [OLD]).open_with_id(blob, "p-1") == (b"seed", kek_id(OLD))


def test_an_unknown_kek_is_a_clear_error_naming_the_value_and_both_kek_ids() -> None:
    blob = SecretBox(OLD).seal(b"seed", "p-1")
    with pytest.raises(KekUnknown) as info:
        SecretBox(NEW).open(blob, "p-1", what="TOTP seed of person p-1")
    assert (info.value.code, info.value.reason) == (Code.INTERNAL, "KEK_UNKNOWN")
    message = info.value.message
    assert "TOTP seed of person p-1" in message
    assert kek_id(OLD) in message and kek_id(NEW) in message
    assert "EGOV_IDENTITY_PREVIOUS_KEKS" in message
    assert _b64(OLD) not in message and _b64(NEW) not in message
    with pytest.raises(KekUnknown):
        SecretBox(NEW).open(_v1_blob(OLD, b"seed", "p-1"), "p-1")


def test_an_edited_or_moved_value_is_unreadable_not_a_crypto_traceback() -> None:
    box = SecretBox(OLD)
    blob = box.seal(b"seed", "p-1")
    with pytest.raises(SealedValueUnreadable) as info:
        box.open(blob, "p-2", what="TOTP seed of person p-2")  # AAD binds the row
    assert info.value.reason == "SEALED_VALUE_UNREADABLE"
    with pytest.raises(SealedValueUnreadable):
        box.open(blob[:-1] + bytes([blob[-1] ^ 1]), "p-1")
    with pytest.raises(SealedValueUnreadable):
        box.open(b"\x07garbage", "p-1")


def test_keks_appear_in_no_repr_and_no_settings_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(NEW))
    monkeypatch.setenv("EGOV_IDENTITY_PREVIOUS_KEKS", f"{_b64(OLD)}, {_b64(STRANGER)}")
    settings = load_settings(IdentitySettings, "IDENTITY")
    assert settings.kek_bytes() == NEW
    assert settings.previous_kek_bytes() == (OLD, STRANGER)
    shown = repr(settings) + settings.model_dump_json() + str(settings)
    config = IdentityConfig(issuer="https://id.test", kek=NEW, previous_keks=(OLD,),
                            pairwise_salt=STRANGER)
    shown += repr(config) + repr(SecretBox(NEW, [OLD]))
    for key in (NEW, OLD, STRANGER):
        assert _b64(key) not in shown and repr(key) not in shown


def test_a_malformed_previous_kek_names_its_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(NEW))
    monkeypatch.setenv("EGOV_IDENTITY_PREVIOUS_KEKS", f"{_b64(OLD)},{_b64(b'short')}")
    with pytest.raises(SettingsError) as info:
        load_settings(IdentitySettings, "IDENTITY").previous_kek_bytes()
    assert info.value.variable == "EGOV_IDENTITY_PREVIOUS_KEKS entry 2"
    assert "32 bytes" in info.value.problem


# ---------------------------------------------------------------- the service across a rotation

def test_tokens_totp_and_pairwise_subjects_survive_rotation_rewrap_and_dropping_the_old_kek(
        old_world: World, sqlite_url: str) -> None:
    register_portal(old_world)
    register_portal(old_world, "pairwise-portal", subject_type=m.SubjectType.PAIRWISE,
                    sector_identifier="p.example")
    _, username, secret = enrol_login(old_world)
    before = _id_token(old_world, username, secret)
    sub_before = _id_token(old_world, username, client_id="pairwise-portal")
    old_world.advance(30)

    rotated = _restart(old_world, sqlite_url, NEW, (OLD,))
    s = rotated.service
    assert s.verify_id_token(before.id_token).aal == 2  # key sealed under OLD still opens
    assert s.login("portal", username, PASSWORD, current_totp(rotated, secret)).aal == 2
    rotated.advance(30)

    first = rewrap_sealed_values(s.engine, s.box)
    resealed = {c.kind: c.resealed for c in first.counts}
    assert resealed["signing keys"] >= 2 and resealed["TOTP seeds"] == 1
    assert resealed["service secrets"] == 1 and first.remaining == 0 and not first.failures
    again = rewrap_sealed_values(s.engine, s.box)
    assert [c.resealed for c in again.counts] == [0, 0, 0]  # a second run is a no-op
    assert {c.kind: c.already_current for c in again.counts} == resealed

    dropped = _restart(rotated, sqlite_url, NEW)  # OLD no longer given
    s = dropped.service
    assert s.verify_id_token(before.id_token).subject
    assert s.login("portal", username, PASSWORD, current_totp(dropped, secret)).aal == 2
    after = _id_token(dropped, username, client_id="pairwise-portal")
    assert (s.verify_id_token(after.id_token).subject
            == s.verify_id_token(sub_before.id_token).subject)  # same pairwise sub


def test_a_database_sealed_under_another_kek_refuses_to_start_with_the_kek_ids(
        old_world: World, sqlite_url: str) -> None:
    register_portal(old_world)
    enrol_login(old_world)
    old_world.service.keyring.ensure(force=True)
    with pytest.raises(KekUnknown) as info:
        _restart(old_world, sqlite_url, STRANGER)
    assert info.value.reason == "KEK_UNKNOWN"
    assert kek_id(OLD) in info.value.message and kek_id(STRANGER) in info.value.message
    assert "TOTP seeds" in info.value.message


def test_a_totp_seed_under_an_unknown_kek_fails_login_with_kek_unknown(
        old_world: World, sqlite_url: str) -> None:
    register_portal(old_world)
    _, username, secret = enrol_login(old_world)
    s = old_world.service
    person_id = s.login("portal", username, PASSWORD).person_id
    old_world.advance(30)
    with s.engine.begin() as conn:  # a seed from elsewhere, sealed before KEK ids
        conn.execute(t.persons.update().where(t.persons.c.person_id == person_id).values(
            totp_secret_enc=_v1_blob(STRANGER, secret, person_id), totp_kek_id=None))
    with pytest.raises(KekUnknown) as info:
        s.login("portal", username, PASSWORD, current_totp(old_world, secret))
    assert f"TOTP seed of person {person_id}" in info.value.message


def test_rewrap_names_a_value_no_kek_opens_and_still_reseals_the_others(
        old_world: World, sqlite_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    register_portal(old_world)
    _, _, secret = enrol_login(old_world, 0)
    enrol_login(old_world, 1)
    s = old_world.service
    s.keyring.ensure(force=True)
    with s.engine.connect() as conn:
        first_id = conn.execute(sa.select(t.persons.c.person_id).where(
            t.persons.c.totp_secret_enc.is_not(None)).order_by(t.persons.c.person_id)
            ).scalars().first()
    assert first_id is not None
    with s.engine.begin() as conn:
        conn.execute(t.persons.update().where(t.persons.c.person_id == first_id).values(
            totp_secret_enc=SecretBox(STRANGER).seal(secret, first_id),
            totp_kek_id=kek_id(STRANGER)))
    s.engine.dispose()
    monkeypatch.setenv("EGOV_IDENTITY_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(NEW))
    monkeypatch.setenv("EGOV_IDENTITY_PREVIOUS_KEKS", _b64(OLD))

    assert main(["rewrap-kek", "--batch-size", "1"]) == 1
    out, err = capsys.readouterr()
    assert "TOTP seeds: 1 re-sealed" in out and "1 cannot be opened" in out
    assert f"TOTP seed of person {first_id} is sealed under KEK {kek_id(STRANGER)}" in err
    assert "Traceback" not in err and "InvalidTag" not in err
    assert _b64(NEW) not in out + err and secret.hex() not in out + err
    assert "1 value(s) still not under KEK" in out

    # The server refuses to start on it too (exit 3, one line, no traceback).
    assert main([]) == 3
    _, err = capsys.readouterr()
    assert "cannot start: KEK_UNKNOWN" in err and "Traceback" not in err


def test_rewrap_leaves_a_value_a_serving_process_changed_meanwhile(old_world: World) -> None:
    register_portal(old_world)
    enrol_login(old_world)
    s = old_world.service
    s.keyring.ensure(force=True)
    box = SecretBox(NEW, [OLD])
    real_seal = box.seal
    replaced: list[bytes] = []

    def seal_while_someone_reenrols(plaintext: bytes, context: str) -> bytes:
        if context.startswith("p-") and not replaced:  # the person re-enrols TOTP meanwhile
            replaced.append(real_seal(b"fresh seed", context))
            with s.engine.begin() as conn:
                conn.execute(t.persons.update().where(t.persons.c.person_id == context)
                             .values(totp_secret_enc=replaced[0], totp_kek_id=box.current_kek_id))
        return real_seal(plaintext, context)

    box.seal = seal_while_someone_reenrols  # type: ignore[method-assign]
    report = rewrap_sealed_values(s.engine, box)
    totp = next(c for c in report.counts if c.kind == "TOTP seeds")
    assert (totp.resealed, totp.changed_meanwhile, report.remaining) == (0, 1, 0)
    with s.engine.connect() as conn:
        stored = conn.execute(sa.select(t.persons.c.totp_secret_enc).where(
            t.persons.c.totp_secret_enc.is_not(None))).scalar_one()
    assert stored == replaced[0]


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision)


def test_rows_written_before_kek_ids_open_after_the_migration_and_rewrap_records_them(
        sqlite_url: str, population: SyntheticPopulation) -> None:
    """A database of the previous release: version 1 blobs, the pairwise key = the KEK."""
    _upgrade(sqlite_url, "0002")
    engine = make_engine(sqlite_url)
    now = dt.datetime.now(dt.UTC).timestamp()
    seed = secrets.token_bytes(20)
    legacy_sub = "ps-" + hmac.new(OLD, b"p.example|p-legacy",
                                  hashlib.sha256).hexdigest()[:40]
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO persons (person_id, identifier, given_name_th, family_name_th, "
            "given_name_en, family_name_en, birth_date, ial, verification_json, username, "
            "totp_secret_enc, totp_confirmed, totp_last_step, created_at) VALUES "
            "('p-legacy', 'TH-PID:1101700203451', '', '', '', '', '', '2.3', '{}', 'legacy', "
            ":blob, 1, 0, :now)"), {"blob": _v1_blob(OLD, seed, "p-legacy"), "now": now})
        conn.execute(sa.text(
            "INSERT INTO clients (client_id, client_name, redirect_uris_json, "
            "grant_types_json, scopes_json, auth_method, jwks_json, subject_type, "
            "sector_identifier, agency, created_at) VALUES ('pw', 'Pairwise', '[]', '[]', "
            "'[]', 'none', '', 'pairwise', 'p.example', '', :now)"), {"now": now})
        conn.execute(sa.text("INSERT INTO subject_aliases (sub, person_id) VALUES "
                             "(:sub, 'p-legacy')"), {"sub": legacy_sub})
    engine.dispose()
    upgrade_to_head(sqlite_url, MIGRATIONS)

    clock = FixedClock(dt.datetime.now(dt.UTC))
    config = IdentityConfig(issuer=ISSUER, kek=NEW, previous_keks=(OLD,))
    service = IdentityService(config, make_engine(sqlite_url), clock, registry=population,
                              companies=population, kyc=population)
    service.check_sealed_values()
    assert service.subject_for("p-legacy", service.get_client("pw")) == legacy_sub
    report = rewrap_sealed_values(service.engine, service.box)
    assert {c.kind: c.resealed for c in report.counts}["TOTP seeds"] == 1
    with service.engine.connect() as conn:
        row = conn.execute(sa.select(t.persons.c.totp_secret_enc, t.persons.c.totp_kek_id)
                           .where(t.persons.c.person_id == "p-legacy")).one()
    assert row.totp_kek_id == kek_id(NEW) == SecretBox.kek_id_of(row.totp_secret_enc)
    assert SecretBox(NEW).open(row.totp_secret_enc, "p-legacy") == seed
    service.engine.dispose()

    without_old = IdentityService(IdentityConfig(issuer=ISSUER, kek=NEW),
                                  make_engine(sqlite_url), clock, registry=population,
                                  companies=population, kyc=population)
    without_old.check_sealed_values()
    assert without_old.subject_for("p-legacy", without_old.get_client("pw")) == legacy_sub
    without_old.engine.dispose()


# ---------------------------------------------------------------- rotate-signing-key

def _claims(world: World) -> dict[str, Any]:
    now = int(world.service.now())
    return {"iss": world.service.config.issuer, "sub": "p-1", "aud": "portal", "iat": now,
            "exp": now + 300}


def test_rotate_immediately_signs_with_the_new_key_and_keeps_the_old_one_published(
        world: World) -> None:
    register_portal(world)
    ring = world.service.keyring
    old_kid, _ = ring.signing_key()
    before = ring.sign(_claims(world))
    done = ring.rotate_immediately()
    assert done.old_kids == (old_kid,) and not done.withdrawn
    assert ring.signing_key()[0] == done.new_kid  # signs now, no publish-ahead wait
    assert {old_kid, done.new_kid} <= {k["kid"] for k in ring.jwks()["keys"]}
    assert world.service.verify_id_token(before).subject == "p-1"
    world.advance(done.kept_until - world.service.now() + 1)
    assert old_kid not in {k["kid"] for k in ring.jwks()["keys"]}  # gone once its tokens are


def test_rotate_immediately_with_withdraw_makes_the_old_tokens_fail(world: World) -> None:
    register_portal(world)
    ring = world.service.keyring
    before = ring.sign(_claims(world))
    rs_before = ring.signing_key("RS256")[0]
    done = ring.rotate_immediately(withdraw_old=True)
    kids = {k["kid"] for k in ring.jwks()["keys"]}
    assert done.new_kid in kids and not set(done.old_kids) & kids
    assert rs_before in kids  # only the algorithm asked for
    with pytest.raises(Unauthenticated) as info:
        world.service.verify_id_token(before)
    assert info.value.reason == "TOKEN_KEY_UNKNOWN"
    after = ring.sign(_claims(world))
    assert world.service.verify_id_token(after).subject == "p-1"


def test_rotate_signing_key_command_prints_the_new_kids(
        sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("EGOV_IDENTITY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(NEW))
    assert main(["rotate-signing-key", "--alg", "ES256"]) == 0
    first = capsys.readouterr().out
    assert "ES256: new signing key es256-0-" in first  # a fresh database: the first key
    assert main(["rotate-signing-key", "--retire-old"]) == 0
    out = capsys.readouterr().out
    assert "ES256: new signing key es256-1-" in out and "RS256: new signing key rs256-" in out
    assert "withdrawn from JWKS now: es256-0-" in out
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        kek_ids = set(conn.execute(sa.select(t.signing_keys.c.private_key_kek_id)).scalars())
    engine.dispose()
    assert kek_ids == {kek_id(NEW)}
    assert json.dumps(out).find(_b64(NEW)) == -1


def test_rotate_signing_key_with_the_wrong_kek_refuses_and_creates_nothing(
        sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("EGOV_IDENTITY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(OLD))
    assert main(["rotate-signing-key"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("EGOV_IDENTITY_KEK", _b64(STRANGER))
    assert main(["rotate-signing-key"]) == 3
    _, err = capsys.readouterr()
    assert "KEK_UNKNOWN" in err and kek_id(OLD) in err and "Traceback" not in err
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.signing_keys).where(
            t.signing_keys.c.private_key_kek_id == kek_id(STRANGER))).scalar_one() == 0
    engine.dispose()


def test_pairwise_subjects_from_an_unknown_key_stop_start_up_instead_of_changing(
        old_world: World, sqlite_url: str) -> None:
    """Subjects handed out under a PAIRWISE_SALT that is no longer set (and no KEK given
    reproduces them): refusing is better than silently giving every person a new ``sub``."""
    register_portal(old_world, "pairwise-portal", subject_type=m.SubjectType.PAIRWISE,
                    sector_identifier="p.example")
    lost_salt = secrets.token_bytes(32)
    sub = "ps-" + hmac.new(lost_salt, b"p.example|p-1", hashlib.sha256).hexdigest()[:40]
    with old_world.service.engine.begin() as conn:
        conn.execute(t.subject_aliases.insert().values(sub=sub, person_id="p-1"))
    with pytest.raises(EgovError) as info:
        _restart(old_world, sqlite_url, NEW, (OLD,))
    assert info.value.reason == "PAIRWISE_SALT_UNKNOWN"
    assert "EGOV_IDENTITY_PAIRWISE_SALT" in info.value.message
