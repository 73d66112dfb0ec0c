"""New passwords follow NIST SP 800-63B section 3.1.1.2: long enough (and long ones allowed), not
breached or common, not repetitive or sequential, not about the person or the service, Unicode
normalised; no composition rules. Refusals are INVALID_ARGUMENT with their own reason and a field
violation, and the password is never in an error or a log line."""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from egov_common.errors import InvalidArgument, PermissionDenied
from egov_common.settings import SettingsError, load_settings
from egov_identity.domain.password_policy import (
    MAX_LENGTH,
    PasswordPolicy,
    read_blocklist_file,
    shipped_blocklist,
)
from egov_identity.settings import IdentitySettings
from egov_identity.storage import tables as t
from egov_testing.platform import Citizen
from identity_world import World, make_service, proof_person, register_portal


def _refusal(world: World, password: str, **kwargs: Any) -> InvalidArgument:
    _, person_id, code = proof_person(world)
    with pytest.raises(InvalidArgument) as info:
        world.service.set_password(person_id, password, enrolment_code=code, **kwargs)
    return info.value


def _accepted(world: World, password: str, index: int = 0) -> None:
    _, person_id, code = proof_person(world, index)
    world.service.set_password(person_id, password, enrolment_code=code, username=f"u{index}")


@pytest.mark.parametrize(("password", "reason"), [
    ("eleven char", "PASSWORD_TOO_SHORT"),
    ("x" * (MAX_LENGTH - 10) + " 0123456789-abc", "PASSWORD_TOO_LONG"),
    ("correct horse battery staple", "PASSWORD_BREACHED"),  # xkcd 936: everyone's example
    ("Password1234!", "PASSWORD_BREACHED"),  # a common one with digits and a symbol added
    ("P@ssw0rd-2024", "PASSWORD_BREACHED"),  # leetspeak undone
    ("ＰＡＳＳＷＯＲＤ１２３４", "PASSWORD_BREACHED"),  # full-width forms, NFKC first
    ("iloveyou2024!!", "PASSWORD_BREACHED"),
    ("aaaaaaaaaaaa", "PASSWORD_REPETITIVE"),
    ("123456789012", "PASSWORD_REPETITIVE"),
    ("abcdefghijkl", "PASSWORD_REPETITIVE"),
    ("qwertyuiop12", "PASSWORD_REPETITIVE"),
    ("zebra7zebra7zebra7", "PASSWORD_REPETITIVE"),
    ("my egov account key", "PASSWORD_CONTEXT"),
    ("digital-id of mine 7", "PASSWORD_CONTEXT"),
])
def test_weak_passwords_are_refused_with_their_own_reason(world: World, password: str,
                                                          reason: str) -> None:
    error = _refusal(world, password)
    assert error.reason == reason
    assert [v.field for v in error.field_violations] == ["new_password"]


def test_long_passphrases_without_composition_rules_are_accepted(world: World) -> None:
    _accepted(world, "lantern orbit velvet canyon", 0)  # lower case only, no digit
    _accepted(world, "ทะเลสาบสีเขียวยามเช้าตรู่", 1)  # Thai
    _accepted(world, " ".join(["mango kite ferry"] * 4) + " walrus", 2)  # 64+ characters
    _accepted(world, "q" + "walrus ferry kite mango " * 10 + "z", 3)  # up to MAX_LENGTH


def test_the_persons_own_words_are_refused(world: World) -> None:
    src, person_id, code = proof_person(world)
    s = world.service
    number = src.identifier.split(":", 1)[1]
    year, month, day = src.birth_date.split("-")
    attempts = {
        "login_name": "orchid likes mango tea",
        "name": f"tea with {src.given_name_en} at noon",
        "identifier": f"card {number[3:10]} blue kite",
        "birth_date": f"born {day}{month}{int(year) + 543} kite",
    }
    for context, password in attempts.items():
        with pytest.raises(InvalidArgument) as info:
            s.set_password(person_id, password, enrolment_code=code, username="orchid.r")
        assert (info.value.reason, info.value.metadata["context"]) == ("PASSWORD_CONTEXT",
                                                                       context), context
    with pytest.raises(InvalidArgument) as info:  # the Thai name too
        s.set_password(person_id, f"รัก{src.given_name_th}ตลอดไปนะ", enrolment_code=code)
    assert info.value.metadata["context"] == "name"
    assert s.set_password(person_id, "lantern orbit velvet canyon", enrolment_code=code,
                          username="orchid.r") == "orchid.r"


def test_personal_checks_run_only_for_a_caller_allowed_to_set_the_password(
        world: World) -> None:
    """Otherwise SetPassword would tell a stranger whether a guess is someone's ID number."""
    src, person_id, _ = proof_person(world)
    number = src.identifier.split(":", 1)[1]
    with pytest.raises(PermissionDenied) as info:
        world.service.set_password(person_id, f"id {number} blue kite",
                                   enrolment_code="not-the-code")
    assert info.value.reason == "ENROLMENT_CODE_INVALID"


def test_the_password_is_never_in_the_error_or_the_log(world: World,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    src, person_id, code = proof_person(world)
    secrets_tried = ["Sunshine2024!", "Sunshine2024!!!", "zzzzzzzzzzzzzzzz",
                     f"{src.given_name_en} rules ok", "x" * (MAX_LENGTH + 1)]
    with caplog.at_level(logging.DEBUG):
        for password in secrets_tried:
            with pytest.raises(InvalidArgument) as info:
                world.service.set_password(person_id, password, enrolment_code=code)
            error = info.value
            shown = " ".join([str(error), repr(error), *error.metadata.values(),
                              *(f"{v.field} {v.description}" for v in error.field_violations)])
            assert password not in shown
    assert [r.reason for r in caplog.records  # type: ignore[attr-defined]
            if r.getMessage() == "password refused"] == [
        "PASSWORD_BREACHED", "PASSWORD_BREACHED", "PASSWORD_REPETITIVE", "PASSWORD_CONTEXT",
        "PASSWORD_TOO_LONG"]
    for password in secrets_tried:
        assert password not in caplog.text
        for record in caplog.records:
            assert password not in str(record.__dict__)


def test_a_password_set_in_one_unicode_form_logs_in_typed_in_another(world: World) -> None:
    register_portal(world)
    _, person_id, code = proof_person(world)
    s = world.service
    decomposed = unicodedata.normalize("NFD", "crème brûlée café orbit")
    name = s.set_password(person_id, decomposed, enrolment_code=code, username="u0")
    composed = unicodedata.normalize("NFC", decomposed)
    assert composed != decomposed
    assert s.login("portal", name, composed).person_id == person_id
    assert s.login("portal", name, decomposed).person_id == person_id
    full_width = "ｌａｎｔｅｒｎ ｏｒｂｉｔ ｖｅｌｖｅｔ ｚｏｏ"
    s.set_password(person_id, full_width, login_session_id=s.login(
        "portal", name, composed).login_session_id)
    assert s.login("portal", name, "lantern orbit velvet zoo").person_id == person_id


def test_a_hash_made_before_normalisation_still_verifies(world: World) -> None:
    register_portal(world)
    _, person_id, code = proof_person(world)
    s = world.service
    s.set_password(person_id, "lantern orbit velvet canyon", enrolment_code=code, username="u0")
    decomposed = unicodedata.normalize("NFD", "crème brûlée café orbit")
    with s.engine.begin() as conn:  # as set_password stored it before NFKC
        conn.execute(t.persons.update().where(t.persons.c.person_id == person_id).values(
            password_hash=s.passwords.hash(decomposed)))
    assert s.login("portal", "u0", decomposed).person_id == person_id


def test_an_agencys_own_blocklist_is_added(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    blocklist = tmp_path / "agency-passwords.txt"
    blocklist.write_text("ministry of magic\nกระทรวงดิจิทัล2567\n\n", encoding="utf-8")
    monkeypatch.setenv("EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE", str(blocklist))
    entries = load_settings(IdentitySettings, "IDENTITY").password_blocklist()
    assert entries == read_blocklist_file(blocklist)
    agency = dataclasses.replace(world, service=make_service(
        str(world.service.engine.url), world.clock, world.population,
        password_blocklist=entries))
    for password in ("Ministry-of-Magic-2024!", "กระทรวงดิจิทัล2567"):
        assert _refusal(agency, password).reason == "PASSWORD_BREACHED"
    _accepted(world, "Ministry-of-Magic-2024!")  # only where the agency's list is loaded


def test_an_unreadable_blocklist_file_is_a_settings_error_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(SettingsError) as info:
        load_settings(IdentitySettings, "IDENTITY").password_blocklist()
    assert info.value.variable == "EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE"
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 caf\xe9 caf\xe9\n")
    monkeypatch.setenv("EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE", str(tmp_path / "latin1.txt"))
    with pytest.raises(SettingsError, match="UTF-8"):
        load_settings(IdentitySettings, "IDENTITY").password_blocklist()


def test_the_shipped_list_is_compact_and_cites_its_sources() -> None:
    import json
    from importlib.resources import files
    document = json.loads(files("egov_identity.domain").joinpath(
        "common_passwords.json").read_text(encoding="utf-8"))
    assert len(document["sources"]) == 3 and all(s["origin"] for s in document["sources"])
    assert 20_000 < len(shipped_blocklist()) < 40_000
    assert files("egov_identity.domain").joinpath("common_passwords.json").stat().st_size \
        < 400_000  # type: ignore[attr-defined]


def test_the_demo_and_test_passwords_pass() -> None:
    """``egov_testing.platform.Citizen`` (the demo, the e2e stories) makes its own passwords;
    this guards them against the policy."""
    policy = PasswordPolicy()
    make = Citizen.__dataclass_fields__["password"].default_factory  # type: ignore[misc]
    for _ in range(200):
        policy.check(make())
