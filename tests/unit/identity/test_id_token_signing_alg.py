"""A client chooses its ID tokens' algorithm (``id_token_signed_response_alg``, OIDC
Registration 1.0 section 2): ES256 by default, RS256 on request; discovery lists exactly what
can be produced."""

from __future__ import annotations

import base64
import hashlib
import secrets
import warnings

import jwt
import pytest
from egov_common.errors import InvalidArgument
from egov_identity.domain import model as m
from egov_identity.domain.keyring import ID_TOKEN_ALGORITHMS
from egov_identity.http import build_http_app
from identity_world import PASSWORD, World, current_totp, enrol_login, register_portal

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is pinned
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _tokens(world: World, client_id: str) -> m.TokenResponse:
    _, username, secret = enrol_login(world, client_id=client_id)
    s = world.service
    login = s.login(client_id, username, PASSWORD, current_totp(world, secret))
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    auth = s.authorize(login_session_id=login.login_session_id, client_id=client_id,
                       redirect_uri="https://portal.test/cb", scope="openid profile",
                       code_challenge=challenge, code_challenge_method="S256")
    return s.token(m.TokenRequest(grant_type="authorization_code", client_id=client_id,
                                  code=auth.code, redirect_uri="https://portal.test/cb",
                                  code_verifier=verifier))


def test_an_rs256_client_gets_rs256_id_tokens_and_the_rest_stays_es256(world: World) -> None:
    register_portal(world, "rs-portal", id_token_signed_response_alg="RS256")
    assert world.service.get_client("rs-portal").id_token_signed_response_alg == "RS256"
    tokens = _tokens(world, "rs-portal")
    header = jwt.get_unverified_header(tokens.id_token)
    assert header["alg"] == "RS256"
    jwk = world.service.keyring.key(header["kid"])
    assert jwk is not None and jwk["kty"] == "RSA" and jwk["alg"] == "RS256"
    verified = world.service.verify_id_token(tokens.id_token)  # the platform's own verifier
    assert verified.claims["aud"] == "rs-portal"
    assert jwt.get_unverified_header(tokens.access_token)["alg"] == "ES256"


def test_clients_get_es256_unless_they_ask(world: World) -> None:
    register_portal(world)
    assert world.service.get_client("portal").id_token_signed_response_alg == "ES256"
    assert jwt.get_unverified_header(_tokens(world, "portal").id_token)["alg"] == "ES256"


@pytest.mark.parametrize("alg", ["HS256", "none", "PS256", "es256"])
def test_an_algorithm_that_cannot_be_produced_is_refused_at_registration(world: World,
                                                                         alg: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        register_portal(world, id_token_signed_response_alg=alg)
    assert info.value.reason == "ID_TOKEN_ALG_UNSUPPORTED"
    assert info.value.field_violations[0].field == "client.id_token_signed_response_alg"


def test_discovery_lists_exactly_the_algorithms_with_a_signing_key(world: World) -> None:
    http = TestClient(build_http_app(world.service), base_url="https://id.test")
    meta = http.get("/.well-known/openid-configuration").json()
    assert meta["id_token_signing_alg_values_supported"] == list(ID_TOKEN_ALGORITHMS)
    published = {k["alg"] for k in http.get("/jwks").json()["keys"]}
    assert set(meta["id_token_signing_alg_values_supported"]) == published
    for alg in meta["id_token_signing_alg_values_supported"]:
        kid, _ = world.service.keyring.signing_key(alg)  # a key that signs right now
        assert kid
