"""Callers become actors: tokens carry scopes and agency; settings grant mTLS services theirs."""

from __future__ import annotations

import pytest
from egov_common.auth import Caller, CallerKind
from egov_common.errors import Unauthenticated
from egov_registry.adapters.callers import StaticTokenVerifier, actor_for

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
    signing = actor_for(Caller(CallerKind.SERVICE, "signing"), trusted)
    assert signing.any_agency and "registry:issue" in signing.scopes
    keys = actor_for(Caller(CallerKind.SERVICE, "keys"), trusted)
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
