"""Proofing: every evidence kind, mismatches, IAL ordering, checksums."""

from __future__ import annotations

import time
from dataclasses import replace

import jwt
import pytest
from egov_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
)
from egov_identity.adapters.population import KYC_PROVIDER
from egov_identity.domain.levels import AssuranceLevels
from egov_identity.domain.proofing import (
    EvidenceOutcome,
    IdpKycEvidence,
    PassportEvidence,
    PersonAttributes,
    ProofingState,
)
from egov_pki.identifiers import parse_identifier, passport
from identity_world import (
    ISSUER,
    PASSWORD,
    World,
    chip_for,
    current_totp,
    enrol_login,
    in_person_for,
    proof_person,
    register_portal,
)


def _thai(world: World, i: int = 0):  # type: ignore[no-untyped-def]
    return [p for p in world.population.people if p.identifier.startswith("TH-PID")][i]


def _start(world: World, src, target: str = "2.3"):  # type: ignore[no-untyped-def]
    return world.service.start_proofing(parse_identifier(src.identifier), target)


def test_chip_and_in_person_reach_ial_2_3_with_evidence_summary(world: World) -> None:
    src = _thai(world)
    s = _start(world, src)
    world.service.submit_evidence(s.session_id, chip_for(src))
    world.service.submit_evidence(s.session_id, in_person_for(src))
    done = world.service.complete_proofing(s.session_id)
    assert done.state is ProofingState.COMPLETED
    assert done.achieved_ial == "2.3"
    person = world.service.person(done.person_id)
    assert person.verification["assurance_level"] == "2.3"
    assert [e["type"] for e in person.verification["evidence"]] == ["document", "document"]
    assert done.enrolment_code


def test_chip_alone_stops_at_2_2_and_misses_a_2_3_target(world: World) -> None:
    src = _thai(world)
    s = _start(world, src)
    world.service.submit_evidence(s.session_id, chip_for(src))
    with pytest.raises(FailedPrecondition) as info:
        world.service.complete_proofing(s.session_id)
    assert info.value.reason == "TARGET_IAL_NOT_REACHED"
    assert world.service.get_proofing(s.session_id).state is ProofingState.FAILED


def test_name_mismatch_fails_the_session_with_a_reason(world: World) -> None:
    src = _thai(world)
    s = _start(world, src, "2.2")
    chip = chip_for(src)
    bad = replace(chip, attributes=replace(chip.attributes, given_name_en="Mallory"))
    after = world.service.submit_evidence(s.session_id, bad)
    assert after.evidence[-1].outcome is EvidenceOutcome.MISMATCH
    assert after.evidence[-1].reason == "NAME_MISMATCH"
    world.service.submit_evidence(s.session_id, chip)
    with pytest.raises(FailedPrecondition) as info:
        world.service.complete_proofing(s.session_id)
    assert info.value.reason == "EVIDENCE_CONFLICT"
    assert info.value.metadata["detail"] == "NAME_MISMATCH"


def test_birth_date_mismatch_from_an_officer(world: World) -> None:
    src = _thai(world)
    s = _start(world, src)
    wrong = replace(in_person_for(src), attributes=PersonAttributes(birth_date="1900-01-01"))
    after = world.service.submit_evidence(s.session_id, wrong)
    assert after.evidence[-1].reason == "BIRTH_DATE_MISMATCH"


def test_wrong_laser_code_is_rejected(world: World) -> None:
    src = _thai(world)
    s = _start(world, src)
    after = world.service.submit_evidence(s.session_id, replace(chip_for(src), laser_code="X"))
    assert after.evidence[-1].outcome is EvidenceOutcome.REJECTED
    assert after.evidence[-1].reason == "CARD_NOT_VALID"


def _kyc(world: World, sub: str, **claims: object) -> str:
    now = int(world.clock.now().timestamp())
    return jwt.encode({"iss": KYC_PROVIDER, "sub": sub, "aud": ISSUER, "iat": now,
                       "exp": now + 300, **claims}, world.population.kyc_signing_key(),
                      algorithm="ES256", headers={"kid": f"{KYC_PROVIDER}-1"})


def test_bank_kyc_assertion_reaches_2_1(world: World) -> None:
    src = _thai(world)
    s = _start(world, src, "2.1")
    world.service.submit_evidence(s.session_id, IdpKycEvidence(KYC_PROVIDER, _kyc(
        world, src.identifier, given_name=src.given_name_en, birthdate=src.birth_date)))
    assert world.service.complete_proofing(s.session_id).achieved_ial == "2.1"


def test_forged_kyc_assertion_is_rejected(world: World) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    src = _thai(world)
    s = _start(world, src, "2.1")
    forged = jwt.encode({"sub": src.identifier, "aud": ISSUER, "iat": int(time.time()),
                         "exp": int(time.time()) + 300}, ec.generate_private_key(ec.SECP256R1()),
                        algorithm="ES256", headers={"kid": f"{KYC_PROVIDER}-1"})
    after = world.service.submit_evidence(s.session_id, IdpKycEvidence(KYC_PROVIDER, forged))
    assert after.evidence[-1].reason == "ASSERTION_INVALID"


def test_passport_with_chip_reaches_2_2(world: World) -> None:
    src = next(p for p in world.population.people if p.identifier.startswith("PASSPORT"))
    _, country, number = src.identifier.split(":")
    s = world.service.start_proofing(passport(country, number), "2.2")
    world.service.submit_evidence(s.session_id, PassportEvidence(
        number, country, PersonAttributes(given_name_en=src.given_name_en,
                                          family_name_en=src.family_name_en,
                                          birth_date=src.birth_date), "2030-01-01", True))
    assert world.service.complete_proofing(s.session_id).achieved_ial == "2.2"


def test_unknown_ial_and_bad_checksum_are_refused(world: World) -> None:
    src = _thai(world)
    with pytest.raises(InvalidArgument) as info:
        _start(world, src, "9.9")
    assert info.value.reason == "IAL_UNKNOWN"
    number = src.identifier.split(":")[1]
    bad = number[:12] + str((int(number[12]) + 1) % 10)
    with pytest.raises(InvalidArgument) as info:
        parse_identifier(f"TH-PID:{bad}")
    assert info.value.reason == "IDENTIFIER_CHECKSUM_INVALID"


def test_ial_ordering_follows_configuration_not_strings() -> None:
    levels = AssuranceLevels.parse("1.1,1.2,1.3,2.1,2.2,2.3,3")
    assert levels.at_least("3", "2.3")
    assert not levels.at_least("1.3", "2.1")
    custom = AssuranceLevels.parse("low,substantial,high")
    assert custom.at_least("high", "low")
    assert AssuranceLevels(("1.1", "2.1", "3")).cap("2.3") == "2.1"


def test_closed_session_takes_no_more_evidence(world: World) -> None:
    src = _thai(world)
    s = _start(world, src, "2.2")
    world.service.submit_evidence(s.session_id, chip_for(src))
    world.service.complete_proofing(s.session_id)
    with pytest.raises(FailedPrecondition) as info:
        world.service.submit_evidence(s.session_id, chip_for(src))
    assert info.value.reason == "PROOFING_CLOSED"


def test_expired_session_is_refused(world: World) -> None:
    src = _thai(world)
    s = _start(world, src)
    world.advance(3601)
    with pytest.raises(FailedPrecondition) as info:
        world.service.submit_evidence(s.session_id, chip_for(src))
    assert info.value.reason == "PROOFING_EXPIRED"


@pytest.mark.parametrize(("target", "evidence"), [("1.1", False), ("2.2", True)])
def test_proofing_below_the_persons_ial_is_refused_and_changes_nothing(
        world: World, target: str, evidence: bool) -> None:
    """A national id and the identity:proofing scope are all an IAL 1.1 proofing needs: it must
    not hand out an enrolment code that resets the password of a person proofed at 2.3."""
    register_portal(world)
    src, username, secret = enrol_login(world)
    s = world.service
    session = _start(world, src, target)
    if evidence:
        s.submit_evidence(session.session_id, chip_for(src))
    with pytest.raises(FailedPrecondition) as info:
        s.complete_proofing(session.session_id)
    assert info.value.reason == "IAL_BELOW_CURRENT"
    assert info.value.metadata["required_ial"] == "2.3"
    after = s.get_proofing(session.session_id)
    assert after.state is ProofingState.FAILED
    assert (after.failure_reason, after.enrolment_code) == ("IAL_BELOW_CURRENT", "")
    person = s.person_by_identifier(src.identifier)
    assert person is not None and (person.ial, person.username) == ("2.3", username)
    assert s.login("portal", username, PASSWORD, current_totp(world, secret)).aal == 2


def test_proofing_again_at_the_persons_ial_recovers_the_account(world: World) -> None:
    """SP 800-63B 6.1.2.3: a person who lost their authenticators proofs again, at their IAL or
    above; the new enrolment code sets a new password, and the old one stops working."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    _, person_id, code = proof_person(world, 0)
    assert code and s.person(person_id).ial == "2.3"
    with pytest.raises(Unauthenticated) as info:
        s.login("portal", username, PASSWORD)
    assert info.value.reason == "CREDENTIALS_INVALID"
    assert s.set_password(person_id, "quartz meadow harbor violin", enrolment_code=code) == username
    with pytest.raises(PermissionDenied):
        s.set_password(person_id, "quartz meadow harbor violin", enrolment_code=code)
    assert s.login("portal", username, "quartz meadow harbor violin").aal == 1
