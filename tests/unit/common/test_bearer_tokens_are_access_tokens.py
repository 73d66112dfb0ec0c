"""A service takes identity's access tokens as bearer tokens, never its ID tokens.

An ID token tells a portal who logged in (OIDC Core, section 2); a portal that forwards one, or
anyone who copies one out of a browser, must not be able to call registry, signing or keys with it,
even when its ``aud`` happens to name that service. RFC 9068 (section 4) has resource servers
check the header ``typ``: identity gives its access tokens ``at+jwt`` and its ID tokens ``JWT``.
Each service's verifier is built here as its settings build it, against a JWKS served over HTTP.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from egov_common.auth import TokenVerifier
from egov_common.errors import Unauthenticated

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keys"))
from keys_world import ISSUER, LocalIdentity


def _registry(jwks_url: str) -> TokenVerifier:
    from egov_registry.adapters.callers import build_token_verifier

    verifier = build_token_verifier(
        static_tokens={}, issuer=ISSUER, jwks_url=jwks_url, audience="urn:egov:registry"
    )
    assert verifier is not None
    return verifier


def _signing(jwks_url: str) -> TokenVerifier:
    from egov_signing.adapters.callers import build_token_verifier

    return build_token_verifier(issuer=ISSUER, jwks_url=jwks_url, audience="urn:egov:signing")


def _keys(jwks_url: str) -> TokenVerifier:
    from egov_keys.adapters.identity import BearerCallerVerifier, IdentityProofVerifier, http_jwks

    # keys also takes portals' client ids as audiences: an ID token is a proof of login there
    proofs = IdentityProofVerifier(http_jwks(jwks_url, ISSUER), ISSUER, ("urn:egov:keys",))
    return BearerCallerVerifier(proofs)


SERVICES: dict[str, tuple[str, Callable[[str], TokenVerifier]]] = {
    "registry": ("urn:egov:registry", _registry),
    "signing": ("urn:egov:signing", _signing),
    "keys": ("urn:egov:keys", _keys),
}


@pytest.fixture(scope="module")
def identity() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def jwks_url(identity: LocalIdentity) -> Iterator[str]:
    with identity.serve_jwks() as url:
        yield url


def _client_token(identity: LocalIdentity, audience: str, typ: str) -> str:
    return identity.token(
        typ=typ, sub="back-office", client_id="back-office", agency="TH-JUR:0994000000014",
        scope="registry:issue keys:seal", aud=audience, acr=None, auth_time=None,
    )


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_an_access_token_for_the_service_is_a_caller(
    service: str, typ: str, identity: LocalIdentity, jwks_url: str
) -> None:
    # RFC 7515 section 4.1.9: a media type, case-insensitive, "application/" implied
    audience, build = SERVICES[service]
    caller = build(jwks_url)(_client_token(identity, audience, typ), peer_service=None)
    assert caller.agency == "TH-JUR:0994000000014"
    assert "registry:issue" in caller.scopes


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("typ", ["JWT", "jwt", "secevent+jwt", "at+jwt+x", "text/at+jwt", ""])
def test_any_other_token_type_for_the_service_is_refused(
    service: str, typ: str, identity: LocalIdentity, jwks_url: str
) -> None:
    audience, build = SERVICES[service]
    with pytest.raises(Unauthenticated) as refused:
        build(jwks_url)(_client_token(identity, audience, typ), peer_service=None)
    assert refused.value.reason == "TOKEN_TYPE_MISMATCH"


@pytest.mark.parametrize("service", SERVICES)
def test_a_citizens_id_token_naming_the_service_is_no_bearer_token(
    service: str, identity: LocalIdentity, jwks_url: str
) -> None:
    audience, build = SERVICES[service]
    id_token = identity.person(aud=[audience, "citizen-portal"])
    with pytest.raises(Unauthenticated) as refused:
        build(jwks_url)(id_token, peer_service=None)
    assert refused.value.reason == "TOKEN_TYPE_MISMATCH"


def test_identity_takes_its_own_access_tokens_as_bearer_tokens_never_its_id_tokens(
    sqlite_url: str,
) -> None:
    import datetime as dt
    import time

    from egov_common.clock import FixedClock
    from egov_common.db import upgrade_to_head
    from egov_identity.__main__ import bearer_verifier
    from egov_identity.adapters.population import SyntheticPopulation

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "identity"))
    from identity_world import ISSUER as IDENTITY_ISSUER
    from identity_world import make_service

    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    clock = FixedClock(dt.datetime.now(dt.UTC))
    service = make_service(sqlite_url, clock, SyntheticPopulation(seed=7, size=2))
    now = int(time.time())
    claims = {
        "iss": IDENTITY_ISSUER, "sub": "agency-app", "aud": ["urn:egov:identity"], "iat": now,
        "exp": now + 300, "jti": "j-1", "client_id": "agency-app", "scope": "identity:admin",
    }
    verify = bearer_verifier(service)
    caller = verify(service.keyring.sign(claims, typ="at+jwt"), peer_service=None)
    assert caller.subject == "agency-app" and "identity:admin" in caller.scopes
    with pytest.raises(Unauthenticated) as refused:
        verify(service.keyring.sign(claims), peer_service=None)  # typ JWT, as its ID tokens
    assert refused.value.reason == "TOKEN_TYPE_MISMATCH"
