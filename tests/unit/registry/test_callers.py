"""Callers become actors: tokens carry scopes and agency; settings grant mTLS services theirs."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.auth import Caller, CallerKind
from egov_common.errors import PermissionDenied, Unauthenticated
from egov_pki.tokens import BearerTokenVerifier, StaticJwks, TokenVerifier
from egov_registry.adapters.callers import StaticTokenVerifier, actor_for
from egov_registry.domain.rules import require_issuer
from jwt.algorithms import ECAlgorithm

AGENCY = "TH-JUR:0994000000014"


def test_static_token_becomes_a_caller_with_its_scopes_and_agency() -> None:
    verifier = StaticTokenVerifier(
        {"t": {"subject": "back-office", "scopes": ["registry:issue"], "agency": AGENCY}}
    )
    caller = verifier("t", peer_service="signing")
    assert (caller.subject, caller.scopes, caller.agency) == (
        "back-office",
        frozenset({"registry:issue"}),
        AGENCY,
    )
    with pytest.raises(Unauthenticated) as refused:
        verifier("unknown", peer_service=None)
    assert refused.value.reason == "TOKEN_INVALID"


def test_trusted_service_gets_what_settings_grant_and_nothing_more() -> None:
    trusted = {"signing": {"scopes": ["registry:issue"], "agency": "*"}}
    signing = actor_for(Caller(CallerKind.SERVICE, "signing", peer_service="signing"), trusted)
    assert signing.any_agency and "registry:issue" in signing.scopes
    keys = actor_for(Caller(CallerKind.SERVICE, "keys", peer_service="keys"), trusted)
    assert not keys.any_agency and not keys.scopes
    # A token cannot claim the wildcard: "*" is only a setting for mTLS identities.
    person = actor_for(Caller(CallerKind.PERSON, "signing", agency="*"), trusted)
    assert not person.any_agency


def test_forwarded_token_names_both_the_person_and_the_service() -> None:
    actor = actor_for(
        Caller(
            CallerKind.PERSON,
            "user-42",
            frozenset({"registry:issue"}),
            AGENCY,
            peer_service="signing",
        ),
        {},
    )
    assert actor.subject == "user-42 via signing"
    assert actor.agency == AGENCY


def test_a_service_identity_not_proven_by_an_mtls_certificate_gets_no_grant() -> None:
    # a development static token may claim kind "service": over plaintext it is still no
    # certificate of the service CA, so settings grant it nothing
    trusted = {"signing": {"scopes": ["registry:issue"], "agency": "*"}}
    verifier = StaticTokenVerifier({"t": {"kind": "service", "subject": "signing"}})
    claimed = actor_for(verifier("t", peer_service=None), trusted)
    assert not claimed.any_agency and "registry:issue" not in claimed.scopes
    # nor does another service's certificate carrying a token that names signing
    carried = actor_for(verifier("t", peer_service="verify-portal"), trusted)
    assert not carried.any_agency and "registry:issue" not in carried.scopes


def _representation_caller(powers: list[str]) -> Caller:
    """identity's token for a person acting for AGENCY (RFC 8693 token exchange), with the
    grant's ``powers``, as the registry's JWT verifier turns it into a caller."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="ES256", use="sig")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://id.test",
        "sub": AGENCY,
        "aud": ["urn:egov:registry"],
        "iat": now,
        "exp": now + 300,
        "client_id": "biz-portal",
        "scope": "registry:issue",
        "act": {"sub": "person-7"},
        "representation": {
            "juristic_person": AGENCY,
            "role": "clerk",
            "powers": powers,
            "grant_id": "rep-1",
        },
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1", "typ": "at+jwt"})
    verifier = TokenVerifier(
        StaticJwks({"keys": [jwk]}), issuer="https://id.test", audiences=["urn:egov:registry"]
    )
    return BearerTokenVerifier(verifier)(token, peer_service=None)


def test_a_representative_issues_for_the_company_only_with_the_register_documents_power() -> None:
    # identity's grants carry powers ("sign", "seal", "register-documents"); a clerk who may
    # only sign for the company is no issuer of its documents, whatever scope the portal holds
    with pytest.raises(PermissionDenied) as refused:
        require_issuer(actor_for(_representation_caller(["sign"]), {}), AGENCY)
    assert refused.value.reason == "NOT_ISSUER"
    require_issuer(actor_for(_representation_caller(["register-documents"]), {}), AGENCY)


def test_a_person_acting_for_the_agency_is_named_in_the_history() -> None:
    # A representation token's sub is the agency; who acted is its act (RFC 8693 4.1).
    claims = {
        "act": {"sub": "p-officer-7"},
        "representation": {"juristic_person": AGENCY, "powers": ["register-documents"]},
    }
    actor = actor_for(
        Caller(CallerKind.PERSON, AGENCY, frozenset({"registry:issue"}), AGENCY, claims=claims),
        {},
    )
    assert actor.subject == f"{AGENCY} acted for by p-officer-7"
    assert actor.agency == AGENCY
