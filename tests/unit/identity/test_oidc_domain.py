"""OIDC grants in the domain: code + PKCE, refresh rotation, client credentials, lock-out."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from egov_identity.domain import model as m
from egov_pki.tokens import StaticJwks, TokenVerifier
from identity_world import (
    ISSUER,
    PASSWORD,
    MachineKey,
    World,
    current_totp,
    enrol_login,
    register_machine,
    register_portal,
    totp_secret,
)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    return verifier, challenge


def _code_flow(world: World, *, scope: str = "openid profile verified_claims",
               acr: str = "2") -> m.TokenResponse:
    register_portal(world)
    _, username, secret = enrol_login(world)
    s = world.service
    login = s.login("portal", username, PASSWORD, current_totp(world, secret))
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope=scope, state="st",
                       nonce="n-1", code_challenge=challenge, code_challenge_method="S256",
                       acr_values=acr)
    assert "state=st" in auth.redirect_to
    return s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                  code=auth.code, redirect_uri="https://portal.test/cb",
                                  code_verifier=verifier))


def _verifier(world: World, audience: str) -> TokenVerifier:
    return TokenVerifier(StaticJwks(world.service.keyring.jwks()), issuer=ISSUER,
                         audiences=[audience], clock=world.service.now)


def test_code_flow_yields_aal2_id_token_with_verified_claims(world: World) -> None:
    tokens = _code_flow(world)
    id_token = _verifier(world, "portal").verify(tokens.id_token)
    assert id_token.aal == 2
    assert id_token.ial == "2.3"
    assert id_token.claims["nonce"] == "n-1"
    assert id_token.claims["amr"] == ["pwd", "otp", "mfa"]
    assert "identifier" not in id_token.claims  # not asked for
    # The civil registry's names in both languages, as keys certifies only verified names.
    person = world.service.person(
        world.service.person_id_for_subject(id_token.subject))  # type: ignore[arg-type]
    names = id_token.claims["verified_claims"]["claims"]
    assert (names["given_name#th"], names["family_name#th"]) == (
        person.attributes.given_name_th, person.attributes.family_name_th)
    assert names["given_name#th"] and names["given_name"] == person.attributes.given_name_en
    access = world.service.verify_access_token(tokens.access_token)
    assert access.subject == id_token.subject


def _code_request(world: World, username: str) -> m.TokenRequest:
    """The token request that redeems a fresh code of ``username`` (an AAL1 login, scope
    openid) at the "portal" client."""
    s = world.service
    login = s.login("portal", username, PASSWORD)
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256")
    return m.TokenRequest(grant_type="authorization_code", client_id="portal", code=auth.code,
                          redirect_uri="https://portal.test/cb", code_verifier=verifier)


def test_code_is_single_use(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    request = _code_request(world, username)
    tokens = s.token(request)
    with pytest.raises(InvalidArgument) as info:
        s.token(request)
    assert info.value.reason == "INVALID_GRANT"
    with pytest.raises(InvalidArgument):  # the replay revoked what the code had produced
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=tokens.refresh_token))


def test_a_replayed_code_revokes_the_access_token_it_was_exchanged_for(world: World) -> None:
    """RFC 6749 sections 4.1.2 and 10.5: the code was stolen or leaked, so nothing it yielded
    may go on being accepted, whether or not the client holds a refresh token."""
    s = world.service
    s.register_client(m.Client(  # no refresh grant: the access token is all the code yields
        client_id="portal", client_name="Portal", redirect_uris=("https://portal.test/cb",),
        grant_types=(m.GRANT_AUTHORIZATION_CODE,), scopes=("openid",), auth_method="none"))
    _, username, _ = enrol_login(world)
    request = _code_request(world, username)
    tokens = s.token(request)
    assert s.userinfo(tokens.access_token)["sub"]
    with pytest.raises(InvalidArgument) as info:
        s.token(request)
    assert info.value.reason == "INVALID_GRANT"
    with pytest.raises(Unauthenticated) as revoked:
        s.userinfo(tokens.access_token)
    assert revoked.value.reason == "TOKEN_REVOKED"
    assert s.introspect(s.get_client("portal"), tokens.access_token) == {"active": False}


def test_a_code_replayed_after_it_expired_still_revokes_what_it_yielded(world: World) -> None:
    """RFC 6749 section 4.1.2: a code used twice is a leaked code, whenever the second use
    comes; an expired code presented again revokes the refresh token and the access token it
    was exchanged for, as a fresh one does."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    request = _code_request(world, username)
    tokens = s.token(request)
    world.advance(s.config.code_seconds + 30)  # the code expired; the access token has not
    with pytest.raises(InvalidArgument) as info:
        s.token(request)
    assert info.value.reason == "INVALID_GRANT"
    with pytest.raises(Unauthenticated) as revoked:
        s.userinfo(tokens.access_token)
    assert revoked.value.reason == "TOKEN_REVOKED"
    with pytest.raises(InvalidArgument):
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=tokens.refresh_token))


def test_an_expired_code_never_used_yields_nothing_and_revokes_nothing(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    earlier = s.token(_code_request(world, username))
    late = _code_request(world, username)
    world.advance(s.config.code_seconds + 1)
    with pytest.raises(InvalidArgument) as info:
        s.token(late)
    assert info.value.reason == "INVALID_GRANT"
    assert s.userinfo(earlier.access_token)["sub"]


def test_wrong_pkce_verifier_and_plain_method_are_refused(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    login = s.login("portal", username, PASSWORD)
    _, challenge = _pkce()
    with pytest.raises(InvalidArgument) as info:
        s.authorize(login_session_id=login.login_session_id, client_id="portal",
                    redirect_uri="https://portal.test/cb", scope="openid",
                    code_challenge=challenge, code_challenge_method="plain")
    assert info.value.reason == "PKCE_METHOD_UNSUPPORTED"
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256")
    with pytest.raises(InvalidArgument) as info:
        s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                               code=auth.code, redirect_uri="https://portal.test/cb",
                               code_verifier=secrets.token_urlsafe(48)))
    assert info.value.reason == "INVALID_GRANT"


def test_pkce_values_outside_the_rfc_7636_syntax_are_refused(world: World) -> None:
    """RFC 7636 section 4.1: a verifier is 43 to 128 unreserved characters (a short one can be
    guessed from the challenge); an S256 challenge is 43 base64url characters."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    login = s.login("portal", username, PASSWORD)
    for challenge in ("!" * 43, _pkce()[1] + "A", _pkce()[1][:-1] + "\n"):
        with pytest.raises(InvalidArgument) as info:
            s.authorize(login_session_id=login.login_session_id, client_id="portal",
                        redirect_uri="https://portal.test/cb", scope="openid",
                        code_challenge=challenge, code_challenge_method="S256")
        assert info.value.reason == "PKCE_REQUIRED"
    for verifier in ("a", "x" * 42, "x" * 129, "x" * 42 + "/", "x" * 42 + "\n"):
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                             ).rstrip(b"=").decode()
        auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                           redirect_uri="https://portal.test/cb", scope="openid",
                           code_challenge=challenge, code_challenge_method="S256")
        with pytest.raises(InvalidArgument) as info:
            s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                   code=auth.code, redirect_uri="https://portal.test/cb",
                                   code_verifier=verifier))
        assert info.value.reason == "INVALID_GRANT"


def test_aal1_login_cannot_satisfy_an_aal2_request(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    login = world.service.login("portal", username, PASSWORD)
    _, challenge = _pkce()
    with pytest.raises(PermissionDenied) as info:
        world.service.authorize(login_session_id=login.login_session_id, client_id="portal",
                                redirect_uri="https://portal.test/cb", scope="openid",
                                code_challenge=challenge, code_challenge_method="S256",
                                acr_values="2")
    assert info.value.reason == "ACR_NOT_MET"


def test_an_essential_acr_in_the_claims_parameter_is_met_or_the_request_fails(
        world: World) -> None:
    """OIDC Core 5.5.1.1 (discovery says claims_parameter_supported): an essential acr that
    the login cannot meet is a failed authentication, not an ID token with a lower acr."""
    import json
    register_portal(world)
    _, username, secret = enrol_login(world)
    s = world.service
    claims = json.dumps({"id_token": {"acr": {"essential": True,
                                              "values": ["urn:egov:aal:2", "urn:egov:aal:3"]}}})
    _, challenge = _pkce()
    weak = s.login("portal", username, PASSWORD)
    with pytest.raises(PermissionDenied) as info:
        s.authorize(login_session_id=weak.login_session_id, client_id="portal",
                    redirect_uri="https://portal.test/cb", scope="openid",
                    code_challenge=challenge, code_challenge_method="S256", claims=claims)
    assert info.value.reason == "ACR_NOT_MET"
    strong = s.login("portal", username, PASSWORD, current_totp(world, secret))
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=strong.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256", claims=claims)
    tokens = s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                    code=auth.code, redirect_uri="https://portal.test/cb",
                                    code_verifier=verifier))
    assert _verifier(world, "portal").verify(tokens.id_token).claims["acr"] == "urn:egov:aal:2"


@pytest.mark.parametrize(("acr_values", "claims", "aal"), [
    ("", "", 1),
    ("urn:egov:aal:2", "", 2),
    ("2", "", 2),
    ("urn:egov:aal:1 urn:egov:aal:2", "", 1),
    ("urn:egov:aal:2 urn:egov:aal:1", "", 1),
    ("urn:other:gold urn:egov:aal:2", "", 2),
    ("urn:other:gold", "", 1),
    ("", '{"id_token": {"acr": {"essential": true, "values": ["urn:egov:aal:2"]}}}', 2),
    ("", '{"id_token": {"acr": {"essential": true, "value": "urn:egov:aal:2"}}}', 2),
    ("", '{"id_token": {"acr": {"values": ["urn:egov:aal:2"]}}}', 1),
    ("", '{"id_token": {"acr": {"essential": true,'
         ' "values": ["urn:egov:aal:2", "urn:egov:aal:1"]}}}', 1),
    ("urn:egov:aal:1 urn:egov:aal:2",
     '{"id_token": {"acr": {"essential": true, "values": ["urn:egov:aal:2"]}}}', 2),
    ("urn:egov:aal:2",
     '{"id_token": {"acr": {"essential": true, "values": ["urn:egov:aal:1"]}}}', 2),
])
def test_acr_values_and_an_essential_acr_are_read_alike_as_lists_of_acceptable_levels(
        world: World, acr_values: str, claims: str, aal: int) -> None:
    """OIDC Core 3.1.2.1 and 5.5.1.1: either names the classes the client accepts, any one of
    them will do; so the login must reach the lowest AAL named, and both ways of asking at
    once mean both are met. A value naming no AAL is someone else's class: ignored."""
    register_portal(world)
    _, challenge = _pkce()
    request = world.service.authorization_request(
        client_id="portal", redirect_uri="https://portal.test/cb", scope="openid",
        code_challenge=challenge, code_challenge_method="S256", acr_values=acr_values,
        claims=claims)
    assert request.required_aal == aal


def test_a_claims_parameter_nested_too_deep_is_claims_invalid(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    login = world.service.login("portal", username, PASSWORD)
    _, challenge = _pkce()
    for claims in ("[" * 100_000, '{"id_token": ' * 100_000):
        with pytest.raises(InvalidArgument) as info:
            world.service.authorize(login_session_id=login.login_session_id, client_id="portal",
                                    redirect_uri="https://portal.test/cb", scope="openid",
                                    code_challenge=challenge, code_challenge_method="S256",
                                    claims=claims)
        assert info.value.reason == "CLAIMS_INVALID"


def test_unregistered_redirect_uri_is_refused(world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    login = world.service.login("portal", username, PASSWORD)
    _, challenge = _pkce()
    with pytest.raises(InvalidArgument) as info:
        world.service.authorize(login_session_id=login.login_session_id, client_id="portal",
                                redirect_uri="https://portal.test/cb/evil", scope="openid",
                                code_challenge=challenge, code_challenge_method="S256")
    assert info.value.reason == "REDIRECT_URI_MISMATCH"


def test_refresh_rotates_and_reuse_revokes_the_family(world: World) -> None:
    first = _code_flow(world)
    s = world.service
    second = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                    refresh_token=first.refresh_token))
    assert second.refresh_token and second.refresh_token != first.refresh_token
    with pytest.raises(InvalidArgument) as info:  # the old one again: theft suspected
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=first.refresh_token))
    assert info.value.reason == "INVALID_GRANT"
    with pytest.raises(InvalidArgument):  # and the legitimate new one died with its family
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=second.refresh_token))


def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_family_too(
        world: World) -> None:
    """RFC 9700 section 4.14.2: a rotated refresh token presented again means someone holds a
    stolen copy; what the family yielded stops being accepted, access tokens included."""
    first = _code_flow(world)
    s = world.service
    second = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                    refresh_token=first.refresh_token))
    with pytest.raises(InvalidArgument):
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=first.refresh_token))
    for access_token in (first.access_token, second.access_token):
        with pytest.raises(Unauthenticated) as info:
            s.userinfo(access_token)
        assert info.value.reason == "TOKEN_REVOKED"
        assert s.introspect(s.get_client("portal"), access_token) == {"active": False}


def test_a_narrower_refresh_keeps_the_grant_for_the_next_one(world: World) -> None:
    """RFC 6749 section 6: the scope asked for narrows this access token; the new refresh
    token's scope MUST be identical to the one presented."""
    first = _code_flow(world, scope="openid profile verified_claims")
    s = world.service
    narrow = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                    refresh_token=first.refresh_token, scope="openid"))
    assert narrow.scope == "openid"
    again = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                   refresh_token=narrow.refresh_token))
    assert again.scope == "openid profile verified_claims"
    assert s.userinfo(again.access_token)["family_name"]


def test_revoked_access_token_fails_userinfo_and_introspection(world: World) -> None:
    tokens = _code_flow(world)
    s = world.service
    assert s.userinfo(tokens.access_token)["verified_claims"]["verification"][
        "assurance_level"] == "2.3"
    assert s.introspect(s.get_client("portal"), tokens.access_token)["active"] is True
    s.revoke(s.get_client("portal"), tokens.access_token)
    assert s.introspect(s.get_client("portal"), tokens.access_token) == {"active": False}
    with pytest.raises(Unauthenticated) as info:
        s.userinfo(tokens.access_token)
    assert info.value.reason == "TOKEN_REVOKED"


def test_a_revoked_access_token_is_no_bearer_token_at_identitys_own_grpc_services(
        world: World) -> None:
    # /revoke answered 200 and introspection says inactive: identity, which holds the list of
    # revoked tokens, must not go on taking the token for admin calls until it expires.
    from egov_identity.__main__ import bearer_verifier
    key = MachineKey()
    register_machine(world, key, scopes=("identity:admin",))
    s = world.service
    token = s.token(m.TokenRequest(
        grant_type="client_credentials", client_id="agency-app",
        client_assertion=key.assertion("agency-app", now=s.now))).access_token
    verify = bearer_verifier(s)
    assert verify(token, peer_service=None).scopes == {"identity:admin"}
    s.revoke(s.get_client("agency-app"), token)
    assert s.introspect(s.get_client("agency-app"), token) == {"active": False}
    with pytest.raises(Unauthenticated) as info:
        verify(token, peer_service=None)
    assert info.value.reason == "TOKEN_REVOKED"


def test_introspection_reports_only_access_tokens_active(world: World) -> None:
    # An ID token whose audience happens to be one of identity's own (a client registered as
    # urn:egov:registry) verifies against introspection's audiences; it is still no access
    # token, and was never looked up in the revocation list.
    register_portal(world, client_id="urn:egov:registry")
    _, username, secret = enrol_login(world, client_id="urn:egov:registry")
    s = world.service
    login = s.login("urn:egov:registry", username, PASSWORD, current_totp(world, secret))
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="urn:egov:registry",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256")
    tokens = s.token(m.TokenRequest(grant_type="authorization_code",
                                    client_id="urn:egov:registry", code=auth.code,
                                    redirect_uri="https://portal.test/cb",
                                    code_verifier=verifier))
    assert s.verify_id_token(tokens.id_token).audience == ("urn:egov:registry",)
    assert s.introspect(s.get_client("urn:egov:registry"), tokens.access_token)["active"] is True
    assert s.introspect(s.get_client("urn:egov:registry"), tokens.id_token) == {"active": False}


def _count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """From now on, each ES256 signature checked, by its signing input."""
    from egov_pki import tokens as pki_tokens

    algorithm = pki_tokens._ALGORITHM_IMPL["ES256"]
    checks: list[bytes] = []
    real_verify = type(algorithm).verify

    def counted(message: bytes, key: object, signature: bytes) -> bool:
        checks.append(message)
        return bool(real_verify(algorithm, message, key, signature))

    monkeypatch.setattr(algorithm, "verify", counted)
    return checks


def test_an_access_token_presented_again_is_checked_once_and_still_revoked_and_expired(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _code_flow(world)
    s = world.service
    checks = _count_signature_checks(monkeypatch)
    for _ in range(3):
        assert s.userinfo(tokens.access_token)["sub"]
        assert s.introspect(s.get_client("portal"), tokens.access_token)["active"] is True
    assert len(checks) == 2  # once per audience set (two here), not once per call

    world.advance(s.config.access_token_seconds + s.config.leeway_seconds + 1)
    with pytest.raises(Unauthenticated) as info:
        s.userinfo(tokens.access_token)
    assert info.value.reason == "TOKEN_EXPIRED"

    fresh = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                   refresh_token=tokens.refresh_token))
    assert s.userinfo(fresh.access_token)["sub"]
    s.revoke(s.get_client("portal"), fresh.access_token)
    with pytest.raises(Unauthenticated) as info:
        s.userinfo(fresh.access_token)
    assert info.value.reason == "TOKEN_REVOKED"


def test_forged_id_tokens_naming_many_audiences_do_not_make_verifiers_forget(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _code_flow(world)
    s = world.service
    checks = _count_signature_checks(monkeypatch)
    assert s.userinfo(tokens.access_token)["sub"]
    kid = s.keyring.jwks()["keys"][0]["kid"]
    forger = ec.generate_private_key(ec.SECP256R1())
    for copies in range(1, 300):  # an unsigned 'aud' is the attacker's to write
        forged = jwt.encode({"iss": ISSUER, "sub": "x", "aud": ["portal"] * copies,
                             "iat": s.now(), "exp": s.now() + 60}, forger, algorithm="ES256",
                            headers={"kid": kid})
        with pytest.raises(Unauthenticated):
            s.verify_id_token(forged)
    before = len(checks)
    assert s.userinfo(tokens.access_token)["sub"]
    assert len(checks) == before  # still remembered: its verifier was kept


def test_client_credentials_with_private_key_jwt_carry_agency_and_scopes(world: World) -> None:
    key = MachineKey()
    register_machine(world, key, agency="TH-JUR:0994000165510")
    s = world.service
    tokens = s.token(m.TokenRequest(grant_type="client_credentials", client_id="agency-app",
                                    client_assertion=key.assertion("agency-app", now=s.now),
                                    client_assertion_type=m.CLIENT_ASSERTION_TYPE,
                                    scope="keys:seal"))
    token = _verifier(world, "urn:egov:keys").verify(tokens.access_token)
    assert token.agency == "TH-JUR:0994000165510"
    assert token.scopes == {"keys:seal"}
    assert token.subject == "agency-app"


def test_replayed_client_assertion_is_refused(world: World) -> None:
    key = MachineKey()
    register_machine(world, key)
    s = world.service
    assertion = key.assertion("agency-app", now=s.now)
    request = m.TokenRequest(grant_type="client_credentials", client_id="agency-app",
                             client_assertion=assertion,
                             client_assertion_type=m.CLIENT_ASSERTION_TYPE)
    s.token(request)
    with pytest.raises(Unauthenticated) as info:
        s.token(request)
    assert info.value.reason == "INVALID_CLIENT"


def test_assertion_signed_by_another_key_is_refused(world: World) -> None:
    register_machine(world, MachineKey())
    with pytest.raises(Unauthenticated) as info:
        world.service.token(m.TokenRequest(
            grant_type="client_credentials", client_id="agency-app",
            client_assertion=MachineKey().assertion("agency-app", now=world.service.now)))
    assert info.value.reason == "INVALID_CLIENT"


def test_lockout_after_configured_failures_looks_the_same_for_unknown_accounts(
        world: World) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    s = world.service
    messages = set()
    for name in (username, "nobody-here"):
        for _ in range(3):
            with pytest.raises(Unauthenticated) as info:
                s.login("portal-" + name, name, "wrong password!!")
            messages.add((info.value.reason, info.value.message))
        with pytest.raises(ResourceExhausted) as locked:
            s.login("portal-" + name, name, PASSWORD)
        messages.add((locked.value.reason, locked.value.message))
    assert messages == {("CREDENTIALS_INVALID", "login name, password or code is wrong"),
                        ("ACCOUNT_LOCKED", "too many failed attempts; try again later")}
    world.advance(301)
    assert s.login("portal", username, PASSWORD).aal == 1


def test_client_is_locked_after_failures_across_accounts(world: World) -> None:
    s = world.service
    for i in range(5):
        with pytest.raises(Unauthenticated):
            s.login("spraying-client", f"someone{i}", "password guess")
    with pytest.raises(ResourceExhausted) as info:
        s.login("spraying-client", "someone-else", "password guess")
    assert info.value.reason == "CLIENT_LOCKED"
    assert int(info.value.metadata["retry_after"]) > 0


def test_unknown_account_costs_a_password_hash_like_a_known_one(world: World) -> None:
    calls: list[str | None] = []
    real = world.service.passwords.verify

    def spy(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    world.service.passwords.verify = spy  # type: ignore[method-assign]
    with pytest.raises(Unauthenticated):
        world.service.login("portal", "no-such-user", "whatever password")
    assert calls == [None]  # verify ran (against the dummy hash) even without an account


def test_totp_code_cannot_be_replayed(world: World) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    s = world.service
    code = current_totp(world, secret)
    assert s.login("portal", username, PASSWORD, code).aal == 2
    with pytest.raises(Unauthenticated):
        s.login("portal", username, PASSWORD, code)


def test_a_password_alone_cannot_replace_a_bound_authenticator(world: World) -> None:
    """NIST SP 800-63B 6.1.2.1: binding another authenticator needs a login at the AAL of the
    one bound. Whoever has only the password gets ACR_NOT_MET from EnrolTotp and ConfirmTotp,
    and the person's own authenticator keeps working."""
    register_portal(world)
    _, username, secret = enrol_login(world)
    s = world.service
    password_only = s.login("portal", username, PASSWORD)
    with pytest.raises(PermissionDenied) as info:
        s.enrol_totp(password_only.login_session_id)
    assert info.value.reason == "ACR_NOT_MET"
    assert info.value.metadata["required_aal"] == "2"
    with pytest.raises(PermissionDenied) as info:
        s.confirm_totp(password_only.login_session_id, current_totp(world, secret))
    assert info.value.reason == "ACR_NOT_MET"
    assert s.login("portal", username, PASSWORD, current_totp(world, secret)).aal == 2


def test_an_aal2_login_replaces_the_authenticator_and_the_password_alone_never_can(
        world: World) -> None:
    register_portal(world)
    _, username, old = enrol_login(world)
    s = world.service
    aal2 = s.login("portal", username, PASSWORD, current_totp(world, old))
    new = totp_secret(s.enrol_totp(aal2.login_session_id))
    # While the new one waits for its first code, a password-only login still cannot bind one.
    password_only = s.login("portal", username, PASSWORD)
    with pytest.raises(PermissionDenied) as info:
        s.enrol_totp(password_only.login_session_id)
    assert info.value.reason == "ACR_NOT_MET"
    s.confirm_totp(aal2.login_session_id, current_totp(world, new))
    world.advance(30)
    with pytest.raises(Unauthenticated):
        s.login("portal", username, PASSWORD, current_totp(world, old))
    assert s.login("portal", username, PASSWORD, current_totp(world, new)).aal == 2


def test_key_rotation_publishes_next_key_before_it_signs(world: World) -> None:
    s = world.service
    ring = s.keyring
    old_kid, _ = ring.signing_key()
    tokens_before = _code_flow(world)
    new_kid = ring.rotate_now()
    assert new_kid in {k["kid"] for k in ring.jwks()["keys"]}
    assert ring.signing_key()[0] == old_kid  # published, not yet signing
    world.advance(s.config.key_publish_ahead_seconds + 1)
    assert ring.signing_key()[0] == new_kid
    kids = {k["kid"] for k in ring.jwks()["keys"]}
    assert {old_kid, new_kid} <= kids  # old key stays while its tokens may live
    _ = tokens_before
    _ = time


def test_pairwise_subjects_differ_per_sector_and_resolve_back(world: World) -> None:
    s = world.service
    register_portal(world, "portal-a", subject_type=m.SubjectType.PAIRWISE,
                    sector_identifier="a.example")
    register_portal(world, "portal-b", subject_type=m.SubjectType.PAIRWISE,
                    sector_identifier="b.example")
    _, person_id, _ = __import__("identity_world").proof_person(world)
    sub_a = s.subject_for(person_id, s.get_client("portal-a"))
    sub_b = s.subject_for(person_id, s.get_client("portal-b"))
    assert sub_a != sub_b
    assert person_id not in (sub_a, sub_b)
    assert s.person_id_for_subject(sub_a) == person_id == s.person_id_for_subject(sub_b)


def test_expired_single_use_records_are_purged(world: World) -> None:
    _code_flow(world)
    world.advance(world.service.config.refresh_token_seconds + 7200)
    assert world.service.purge_expired() >= 2  # the used code and the refresh token at least


def test_the_purge_removes_every_expired_row_in_batches_and_keeps_live_ones(
        world: World) -> None:
    from egov_identity.storage import tables as t
    s = world.service
    now = s.now()
    rows = [{"issuer": "agency-app", "jti": f"old-{i}", "expires_at": now - 7200 - i}
            for i in range(2345)]
    rows += [{"issuer": "agency-app", "jti": f"live-{i}", "expires_at": now + 60}
             for i in range(7)]
    with s.engine.begin() as conn:
        conn.execute(t.used_jtis.insert(), rows)
    assert s.purge_expired(batch=1000) >= 2345
    with s.engine.connect() as conn:
        left = sorted(conn.execute(sa.select(t.used_jtis.c.jti)).scalars())
    assert left == sorted(f"live-{i}" for i in range(7))
    assert s.purge_expired(batch=1000) == 0


def test_refresh_for_a_pairwise_client_and_a_refused_scope_does_not_burn_the_token(
        world: World) -> None:
    s = world.service
    register_portal(world, subject_type=m.SubjectType.PAIRWISE, sector_identifier="p.example")
    _, username, _ = enrol_login(world)
    login = s.login("portal", username, PASSWORD)
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid profile",
                       code_challenge=challenge, code_challenge_method="S256")
    first = s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                   code=auth.code, redirect_uri="https://portal.test/cb",
                                   code_verifier=verifier))
    with pytest.raises(InvalidArgument) as info:
        s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                               refresh_token=first.refresh_token, scope="openid keys:sign"))
    assert info.value.reason == "INVALID_SCOPE"
    second = s.token(m.TokenRequest(grant_type="refresh_token", client_id="portal",
                                    refresh_token=first.refresh_token, scope="openid"))
    sub = _verifier(world, "portal").verify(second.id_token).subject
    assert sub.startswith("ps-")
    assert second.scope == "openid"


def test_overlong_values_are_refused_with_the_field_named(world: World) -> None:
    with pytest.raises(InvalidArgument) as info:
        register_portal(world, "c" * 129)
    assert info.value.reason == "FIELD_TOO_LONG"
    assert info.value.field_violations[0].field == "client.client_id"


def test_password_change_needs_the_persons_own_session(world: World) -> None:
    s = world.service
    register_portal(world)
    _, username, _ = enrol_login(world, 0)
    _, other_name, _ = enrol_login(world, 1)
    me = s.login("portal", username, PASSWORD)
    other = s.login("portal", other_name, PASSWORD)
    with pytest.raises(PermissionDenied):
        s.set_password(me.person_id, "another long password", login_session_id=other.
                       login_session_id)
    s.set_password(me.person_id, "another long password", login_session_id=me.login_session_id)
    assert s.login("portal", username, "another long password").person_id == me.person_id
    with pytest.raises(InvalidArgument) as info:
        s.set_password(me.person_id, "short", login_session_id=me.login_session_id)
    assert info.value.reason == "PASSWORD_TOO_SHORT"


def test_enrolment_code_works_once(world: World) -> None:
    s = world.service
    _, person_id, code = __import__("identity_world").proof_person(world)
    s.set_password(person_id, PASSWORD, enrolment_code=code)
    with pytest.raises(PermissionDenied) as info:
        s.set_password(person_id, "a different password", enrolment_code=code)
    assert info.value.reason == "ENROLMENT_CODE_INVALID"


def test_an_admin_scope_never_goes_into_a_token_that_speaks_for_a_person(world: World) -> None:
    """identity:admin, keys:admin administer a service: a machine client's own, by client
    credentials. A person who logs in through a client that also holds one gets none of it."""
    world.service.register_client(m.Client(
        client_id="console", client_name="Operations console",
        redirect_uris=("https://console.test/cb",),
        grant_types=(m.GRANT_AUTHORIZATION_CODE,),
        scopes=("openid", "profile", "identity:admin", "keys:admin"), auth_method="none"))
    _, username, secret = enrol_login(world, client_id="console")
    s = world.service
    login = s.login("console", username, PASSWORD, current_totp(world, secret))
    _, challenge = _pkce()
    for scope in ("openid identity:admin", "openid profile keys:admin"):
        with pytest.raises(InvalidArgument) as info:
            s.authorize(login_session_id=login.login_session_id, client_id="console",
                        redirect_uri="https://console.test/cb", scope=scope, state="st",
                        nonce="n-1", code_challenge=challenge, code_challenge_method="S256",
                        acr_values="2")
        assert info.value.reason == "SCOPE_INVALID"
        assert "machine client" in info.value.message
