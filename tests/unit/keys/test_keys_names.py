"""A certificate names only what identity verified: each name field equals the verified claim of
its language, a field identity verified nothing for stays out of the certificate, and a
certificate left with no verified name is refused."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from egov_common.errors import EgovError
from egov_keys.credentials import OwnerNames
from egov_keys.domain.algorithms import KeyAlgorithm
from egov_keys.domain.model import Credential
from egov_keys.domain.pki import OwnerKind
from egov_pki.identifiers import juristic_number, national_id
from keys_world import (
    AGENCY_ID,
    ANON,
    COMPANY_CLAIMS,
    COMPANY_ID,
    COMPANY_NAMES,
    PERSON_ID,
    PERSON_NAMES,
    VERIFIED_NAMES,
    VERIFIED_NAMES_TH,
)
from test_keys_sole_control import renew


def create(keys, names: OwnerNames, proof: str, *, kind=OwnerKind.NATURAL_PERSON, key="k"):
    owner = national_id(PERSON_ID) if kind is OwnerKind.NATURAL_PERSON else (
        juristic_number(COMPANY_ID if kind is OwnerKind.LEGAL_PERSON else AGENCY_ID)
    )
    return keys.credentials.create(
        ANON,
        idempotency_key=key,
        owner=owner,
        kind=kind,
        algorithm=KeyAlgorithm.ECDSA_P256,
        names=names,
        proof_token=proof,
        backend=None,
    )


def refusal(call) -> EgovError:
    with pytest.raises(EgovError) as info:
        call()
    return info.value


def subject(credential: Credential) -> dict[str, list[str]]:
    name = x509.load_der_x509_certificate(credential.certificate_der).subject
    oids = {
        "CN": NameOID.COMMON_NAME,
        "GN": NameOID.GIVEN_NAME,
        "SN": NameOID.SURNAME,
        "O": NameOID.ORGANIZATION_NAME,
    }
    return {k: [str(a.value) for a in name.get_attributes_for_oid(o)] for k, o in oids.items()}


def created_entry(keys) -> dict[str, object]:
    [entry] = [r for r in keys.repository.audit_records() if r.action == "credential.create"]
    return json.loads(entry.details_json)


def test_a_verified_name_moved_into_the_other_language_is_refused(keys, identity):
    # identity verified "Somchai Jaidee" (English); the request puts that in the Thai fields
    # and someone else's name in the English ones, which make the certificate's CN.
    swapped = OwnerNames("Somchai", "Jaidee", "Thaksin", "Shinawatra")
    error = refusal(lambda: create(keys, swapped, identity.person()))
    assert (error.code.value, error.reason) == ("PERMISSION_DENIED", "NAMES_MISMATCH")
    assert [v.field for v in error.field_violations] == [
        "names.given_name_en",
        "names.family_name_en",
    ]
    assert keys.repository.credential_by_idempotency_key("k") is None


def test_thai_names_identity_did_not_verify_stay_out_of_the_certificate(keys, identity):
    # identity's ID token verifies the English names only (verified_claims.claims).
    names = OwnerNames("ทักษิณ", "ชินวัตร", "Somchai", "Jaidee")
    credential = create(keys, names, identity.person(verified_names=VERIFIED_NAMES))
    assert subject(credential) == {
        "CN": ["Somchai Jaidee"],
        "GN": ["Somchai"],
        "SN": ["Jaidee"],
        "O": [],
    }
    assert created_entry(keys)["names_omitted"] == ["names.given_name_th", "names.family_name_th"]


def test_thai_names_are_certified_when_identity_verified_them(keys, identity):
    proof = identity.person(verified_names=VERIFIED_NAMES_TH)
    credential = create(keys, PERSON_NAMES, proof)
    assert subject(credential)["GN"] == ["Somchai", "สมชาย"]
    assert subject(credential)["SN"] == ["Jaidee", "ใจดี"]
    assert created_entry(keys)["names_omitted"] == []
    other = OwnerNames("ทักษิณ", "ใจดี", "Somchai", "Jaidee")
    error = refusal(lambda: create(keys, other, proof, key="k2"))
    assert error.reason == "NAMES_MISMATCH"
    assert [v.field for v in error.field_violations] == ["names.given_name_th"]


def test_names_identity_has_no_verified_claim_for_are_not_certified(keys, identity):
    # A person identity holds no English name for: the English fields cannot be checked.
    thai_only = {"given_name#th": "สมชาย", "family_name#th": "ใจดี"}
    credential = create(keys, PERSON_NAMES, identity.person(verified_names=thai_only))
    assert subject(credential) == {"CN": ["สมชาย ใจดี"], "GN": ["สมชาย"], "SN": ["ใจดี"], "O": []}
    assert created_entry(keys)["names_omitted"] == [
        "names.given_name_en",
        "names.family_name_en",
    ]
    # With no verified claim at all, nothing is left to certify.
    english = OwnerNames(given_name_en="Somchai", family_name_en="Jaidee")
    error = refusal(lambda: create(keys, english, identity.person(verified_names={}), key="k2"))
    assert (error.code.value, error.reason) == ("PERMISSION_DENIED", "NAMES_UNVERIFIED")
    assert [v.field for v in error.field_violations] == [
        "names.given_name_en",
        "names.family_name_en",
    ]
    assert keys.repository.credential_by_idempotency_key("k2") is None


def test_a_company_name_identity_does_not_vouch_for_is_refused(keys, identity):
    # A director of ACME asks for a certificate on ACME's number in another company's name.
    # identity's representation tokens carry no company names today: nothing can be checked.
    bank = OwnerNames(organization_en="Bank of Thailand", organization_th="ธนาคารแห่งประเทศไทย")
    for names in (bank, COMPANY_NAMES):
        error = refusal(
            lambda n=names: create(keys, n, identity.representative(), kind=OwnerKind.LEGAL_PERSON)
        )
        assert (error.code.value, error.reason) == ("PERMISSION_DENIED", "NAMES_UNVERIFIED")
        assert [v.field for v in error.field_violations] == [
            "names.organization_name_en",
            "names.organization_name_th",
        ]
    # Where the representation claim names the company, the names must be those.
    proof = identity.representative(names=COMPANY_CLAIMS)
    error = refusal(lambda: create(keys, bank, proof, kind=OwnerKind.LEGAL_PERSON))
    assert error.reason == "NAMES_MISMATCH"
    credential = create(keys, COMPANY_NAMES, proof, kind=OwnerKind.LEGAL_PERSON)
    assert subject(credential)["O"] == ["ACME Co., Ltd.", "บริษัท เอซีเอ็มอี จำกัด"]
    assert not [r for r in keys.repository.audit_records() if r.outcome.startswith("failure")]


def test_renewal_checks_the_names_again(keys, identity):
    old = create(keys, PERSON_NAMES, identity.person(verified_names=VERIFIED_NAMES_TH))
    # identity now verifies another English name (changed at the civil registry).
    changed = {**VERIFIED_NAMES_TH, "family_name": "Rakthai"}
    error = refusal(
        lambda: renew(keys.credentials, old, "r1", identity.person(verified_names=changed))
    )
    assert (error.reason, [v.field for v in error.field_violations]) == (
        "NAMES_MISMATCH",
        ["names.family_name_en"],
    )
    renewals = [r for r in keys.repository.audit_records() if r.action == "credential.renew"]
    assert [r.outcome for r in renewals] == ["failure:NAMES_MISMATCH"]
    assert keys.credentials.get(old.credential_id).status.value == "active"
    # Renewed with a token that verifies the English names only: the Thai ones are left out.
    new, _ = renew(keys.credentials, old, "r2", identity.person(verified_names=VERIFIED_NAMES))
    assert subject(new)["GN"] == ["Somchai"]
    [entry] = [
        r
        for r in keys.repository.audit_records()
        if r.action == "credential.renew" and r.outcome == "success"
    ]
    assert json.loads(entry.details_json)["names_omitted"] == [
        "names.given_name_th",
        "names.family_name_th",
    ]


def test_a_company_credential_is_not_renewed_with_names_nobody_verified(keys, identity):
    proof = identity.representative(names=COMPANY_CLAIMS)
    old = create(keys, COMPANY_NAMES, proof, kind=OwnerKind.LEGAL_PERSON)
    error = refusal(lambda: renew(keys.credentials, old, "r1", identity.representative()))
    assert error.reason == "NAMES_UNVERIFIED"
