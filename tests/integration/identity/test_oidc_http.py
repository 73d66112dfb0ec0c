"""A running identity service against unmodified relying-party libraries (Authlib, PyJWT)."""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey
from authlib.jose import jwt as authlib_jwt
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from egov_clients.identity import MachineKey
from egov_common.errors import Code, EgovError
from egov_pki.tokens import HttpJwks, TokenVerifier
from identity_process import (
    ADMIN_ID,
    PASSWORD,
    PORTAL_ID,
    REDIRECT,
    RS256_PORTAL_ID,
    RunningIdentity,
    next_totp,
    setup_citizen,
    thai_citizens,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore:authlib.jose module is deprecated")


_next_index = iter(range(1, 100))


@pytest.fixture(scope="module")
def portal(identity: RunningIdentity, admin_key: MachineKey) -> None:
    setup_citizen(identity, admin_key, index=0)  # registers the portal as a side effect


@pytest.fixture
def citizen(identity: RunningIdentity, admin_key: MachineKey, portal: None
            ) -> tuple[str, bytes]:
    """A freshly proofed and enrolled citizen per test (each TOTP step counts once)."""
    return setup_citizen(identity, admin_key, index=next(_next_index), register_portal=False)


def _authlib_code_flow(identity: RunningIdentity, client_id: str, username: str,
                       secret: bytes, scope: str) -> tuple[OAuth2Client, dict[str, Any], Any]:
    """Authlib as a portal: discovery, authorize with PKCE and nonce, the login form, token,
    then the ID token validated against the JWKS. Returns (client, token, claims)."""
    issuer = identity.issuer
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == issuer

    client = OAuth2Client(client_id=client_id, redirect_uri=REDIRECT, scope=scope,
                          code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                 nonce=nonce, code_verifier=verifier,
                                                 acr_values="urn:egov:aal:2")
    form_page = httpx.get(url)
    assert form_page.status_code == 200
    hidden = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form_page.text))
    import html as html_mod
    hidden = {k: html_mod.unescape(v) for k, v in hidden.items()}
    response = httpx.post(metadata["authorization_endpoint"], data={
        **hidden, "username": username, "password": PASSWORD, "totp_code": next_totp(secret)})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["state"] == [state]
    token = client.fetch_token(metadata["token_endpoint"], authorization_response=location,
                               code_verifier=verifier)
    jwks = JsonWebKey.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    claims = authlib_jwt.decode(
        token["id_token"], jwks, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": client_id,
                       "access_token": token["access_token"]})
    claims.validate(leeway=30)  # signature, iss, aud, exp, iat, nonce, at_hash
    return client, dict(token), claims


def test_authlib_discovery_code_pkce_flow_and_id_token_validation(
        identity: RunningIdentity, citizen: tuple[str, bytes]) -> None:
    username, secret = citizen
    client, token, claims = _authlib_code_flow(identity, PORTAL_ID, username, secret,
                                               "openid profile verified_claims")
    assert jwt.get_unverified_header(token["id_token"])["alg"] == "ES256"
    assert claims["acr"] == "urn:egov:aal:2"
    assert claims["verified_claims"]["verification"]["assurance_level"] == "2.3"
    assert claims["verified_claims"]["verification"]["trust_framework"] == "th_digital_id"
    userinfo = client.get(f"{identity.issuer}/userinfo").json()
    assert userinfo["sub"] == claims["sub"]


def test_an_rs256_client_gets_an_rs256_id_token_that_verifies_through_jwks(
        identity: RunningIdentity, citizen: tuple[str, bytes]) -> None:
    username, secret = citizen
    metadata = httpx.get(f"{identity.issuer}/.well-known/openid-configuration").json()
    assert metadata["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    _, token, claims = _authlib_code_flow(identity, RS256_PORTAL_ID, username, secret,
                                          "openid profile")  # Authlib verified it already
    assert claims["aud"] == RS256_PORTAL_ID
    id_token = token["id_token"]
    assert jwt.get_unverified_header(id_token)["alg"] == "RS256"
    # PyJWT as an unmodified relying party: the key found by kid in the published JWKS.
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(id_token)
    assert signing_key.key_type == "RSA"
    verified = jwt.decode(id_token, signing_key.key,
                          algorithms=metadata["id_token_signing_alg_values_supported"],
                          audience=RS256_PORTAL_ID, issuer=identity.issuer, leeway=30)
    assert verified["sub"] == claims["sub"] and verified["acr"] == "urn:egov:aal:2"
    # Access tokens stay ES256 whatever the client's ID token choice.
    assert jwt.get_unverified_header(token["access_token"])["alg"] == "ES256"


def test_set_password_over_grpc_refuses_a_breached_password_with_a_field_violation(
        identity: RunningIdentity, admin_key: MachineKey, portal: None) -> None:
    from egov.identity.v1 import authentication_pb2 as auth_pb
    c = identity.client
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:proofing")
    person_id, code = c.proof_citizen(admin, thai_citizens()[next(_next_index)])
    for password, reason in (("Password1234!", "PASSWORD_BREACHED"),
                             ("short one", "PASSWORD_TOO_SHORT"),
                             ("1234567890123456", "PASSWORD_REPETITIVE")):
        with pytest.raises(EgovError) as info:
            c.call(c.authn.SetPassword, auth_pb.SetPasswordRequest(
                person_id=person_id, enrolment_code=code, new_password=password))
        assert (info.value.code, info.value.reason) == (Code.INVALID_ARGUMENT, reason)
        assert [v.field for v in info.value.field_violations] == ["new_password"]
        assert password not in str(info.value)
    log = identity.process.log_path.read_text()
    assert '"reason": "PASSWORD_BREACHED"' in log
    assert "Password1234!" not in log and "1234567890123456" not in log


def test_tampered_id_token_is_refused_by_authlib_and_the_shared_verifier(
        identity: RunningIdentity, citizen: tuple[str, bytes]) -> None:
    username, secret = citizen
    tokens = identity.client.login_and_get_tokens(
        PORTAL_ID, REDIRECT, username, PASSWORD, totp_secret=secret, scope="openid",
        totp_at=time.time() + 30)
    header, payload, signature = tokens.id_token.split(".")
    import base64
    import json
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    verifier = TokenVerifier(HttpJwks(identity.issuer + "/jwks"), issuer=identity.issuer,
                             audiences=[PORTAL_ID])
    assert verifier.verify(tokens.id_token).subject != "someone-else"
    with pytest.raises(EgovError) as info:
        verifier.verify(forged)
    assert info.value.reason == "TOKEN_SIGNATURE_INVALID"


def test_grpc_errors_carry_code_and_reason(identity: RunningIdentity) -> None:
    from egov.identity.v1 import proofing_pb2
    with pytest.raises(EgovError) as info:  # no token: no proofing
        identity.client.call(identity.client.proofing.GetProofing,
                             proofing_pb2.GetProofingRequest(session_id="x"))
    assert info.value.code is Code.PERMISSION_DENIED
    assert info.value.reason == "SCOPE_MISSING"


def _agency_machine_client(identity: RunningIdentity, admin_key: MachineKey, client_id: str,
                           scopes: list[str]) -> MachineKey:
    """An agency's back office registered by the admin (client credentials, private_key_jwt):
    its key."""
    c = identity.client
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    key = MachineKey()
    c.register_client(admin, client_id=client_id, client_name=f"{client_id} of DBD",
                      grant_types=["client_credentials"], scopes=scopes, key=key,
                      agency="TH-JUR:0994000165510")
    return key


def test_agency_machine_client_gets_scoped_token_with_agency_claim(
        identity: RunningIdentity, admin_key: MachineKey) -> None:
    c = identity.client
    agency_key = _agency_machine_client(identity, admin_key, "dbd-backoffice",
                                        ["registry:issue", "keys:seal"])
    token = c.client_credentials_token("dbd-backoffice", agency_key, "registry:issue")
    # found the way other services find it: from the issuer's discovery document
    verified = TokenVerifier(HttpJwks.discover(identity.issuer), issuer=identity.issuer,
                             audiences=["urn:egov:registry"]).verify(token)
    assert verified.agency == "TH-JUR:0994000165510"
    assert verified.scopes == {"registry:issue"}
    with pytest.raises(EgovError) as info:  # a scope it was not registered for
        c.client_credentials_token("dbd-backoffice", agency_key, "identity:admin")
    assert info.value.reason == "INVALID_SCOPE"


def test_an_unmodified_authlib_machine_client_authenticates_with_private_key_jwt(
        identity: RunningIdentity, admin_key: MachineKey) -> None:
    # authlib signs each client assertion valid for an hour (its default, not configurable on
    # PrivateKeyJWT) and uses it at once: taken, since its iat is fresh (a replay of its jti is
    # refused: test_token_endpoint_fast_path.py).
    from authlib.oauth2.rfc7523 import PrivateKeyJWT
    from cryptography.hazmat.primitives import serialization
    from joserfc.jwk import ECKey

    key = _agency_machine_client(identity, admin_key, "authlib-backoffice", ["registry:issue"])
    metadata = OpenIDProviderMetadata(
        httpx.get(identity.issuer + "/.well-known/openid-configuration").json())
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    pem = key.private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    token_endpoint = metadata["token_endpoint"]
    with OAuth2Client(client_id="authlib-backoffice", client_secret=ECKey.import_key(pem),
                      token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, alg="ES256",
                                                               headers={"kid": key.kid}),
                      scope="registry:issue") as client:
        token = client.fetch_token(token_endpoint, grant_type="client_credentials")
    verified = TokenVerifier(HttpJwks.discover(identity.issuer), issuer=identity.issuer,
                             audiences=["urn:egov:registry"]).verify(token["access_token"])
    assert verified.subject == "authlib-backoffice"
    assert verified.agency == "TH-JUR:0994000165510"


def test_a_portal_registered_over_grpc_may_ask_for_rs256_id_tokens(
        identity: RunningIdentity, admin_key: MachineKey) -> None:
    from egov.identity.v1 import clients_pb2
    c = identity.client
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    registered = c.register_client(admin, client_id="rs256-portal", client_name="RS256 portal",
                                   grant_types=["authorization_code"], scopes=["openid"],
                                   redirect_uris=["https://rs.example/cb"], id_token_alg="RS256")
    assert registered.id_token_signed_response_alg == "RS256"
    read = c.call(c.clients.GetClient, clients_pb2.GetClientRequest(client_id="rs256-portal"),
                  admin).client
    assert read.id_token_signed_response_alg == "RS256"
    with pytest.raises(EgovError) as info:
        c.register_client(admin, client_id="hs256-portal", client_name="HS256 portal",
                          grant_types=["authorization_code"], scopes=["openid"],
                          redirect_uris=["https://hs.example/cb"], id_token_alg="HS256")
    assert info.value.reason == "ID_TOKEN_ALG_UNSUPPORTED"


def test_lockout_over_grpc_is_resource_exhausted_and_same_for_unknown_names(
        identity: RunningIdentity, citizen: tuple[str, bytes]) -> None:
    from egov.identity.v1 import authentication_pb2 as auth_pb
    username, _ = citizen
    outcomes: dict[str, list[tuple[Code, str]]] = {}
    for name in (username, "no-such-citizen"):
        seen = []
        for _ in range(6):
            with pytest.raises(EgovError) as info:
                identity.client.call(identity.client.authn.Login, auth_pb.LoginRequest(
                    client_id=f"lock-test-{name}", username=name, password="wrong wrong wrong"))
            seen.append((info.value.code, info.value.reason))
        outcomes[name] = seen
    assert outcomes[username] == outcomes["no-such-citizen"]
    assert outcomes[username][:5] == [(Code.UNAUTHENTICATED, "CREDENTIALS_INVALID")] * 5
    assert outcomes[username][5] == (Code.RESOURCE_EXHAUSTED, "ACCOUNT_LOCKED")


def test_no_national_id_number_in_the_service_log(
        identity: RunningIdentity, citizen: tuple[str, bytes]) -> None:
    log = identity.process.log_path.read_text()
    assert "proofing started" in log and "-xxxxx-xx-" in log  # logged, but masked
    for person in thai_citizens():
        number = person.identifier.split(":", 1)[1]
        assert number not in log
