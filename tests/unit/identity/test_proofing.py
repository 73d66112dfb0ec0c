"""Proofing: every evidence kind, mismatches, IAL ordering, checksums."""

from __future__ import annotations

import time
from dataclasses import replace

import jwt
import pytest
from egov_common.errors import FailedPrecondition, InvalidArgument
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
from identity_world import ISSUER, World, chip_for, in_person_for


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
