"""The OIDC HTTP endpoints in process (starlette TestClient): error mapping and safety."""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
import warnings

import pytest
from identity_world import (
    PASSWORD,
    MachineKey,
    World,
    current_totp,
    enrol_login,
    register_machine,
    register_portal,
)

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is pinned
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from egov_identity.domain import model as m
from egov_identity.http import build_http_app


@pytest.fixture
def http(world: World) -> TestClient:
    return TestClient(build_http_app(world.service), base_url="https://id.test")


def _authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": "portal",
            "redirect_uri": "https://portal.test/cb", "scope": "openid", "state": "s1",
            "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256",
            **extra}


def _pkce() -> tuple[str, str]:
    v = secrets.token_urlsafe(48)
    return v, base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


def test_discovery_names_every_endpoint(http: TestClient) -> None:
    meta = http.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == "https://id.test"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}
    algs = {k["alg"] for k in http.get("/jwks").json()["keys"]}
    assert algs == {"ES256", "RS256"}


def test_discovery_says_how_to_authenticate_at_revocation_and_introspection(
        http: TestClient) -> None:
    # Read as an unmodified client library reads it: a member left out means its default,
    # client_secret_basic for both endpoints (RFC 8414 section 2) and request_uri supported
    # (OIDC Discovery 1.0 section 3), none of which this provider accepts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.oidc.discovery import OpenIDProviderMetadata
    meta = OpenIDProviderMetadata(http.get("/.well-known/openid-configuration").json())
    meta.validate()
    assert meta.revocation_endpoint_auth_methods_supported == ["none", "private_key_jwt"]
    assert meta.introspection_endpoint_auth_methods_supported == ["private_key_jwt"]
    for endpoint in ("token", "revocation", "introspection"):
        assert meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == [
            "ES256", "RS256"]
    assert meta.request_parameter_supported is False
    assert meta.request_uri_parameter_supported is False


@pytest.mark.parametrize(("parameter", "error"), [
    ("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")])
def test_a_request_object_is_refused_not_ignored(world: World, http: TestClient,
                                                  parameter: str, error: str) -> None:
    # OIDC Core 6.1 and 6.2: an OP without request objects MUST say so; ignoring one would log
    # the person in for the outer parameters, not those the client signed.
    register_portal(world)
    _, challenge = _pkce()
    r = http.get("/authorize", params=_authorize_params(
        challenge, **{parameter: "eyJhbGciOiJub25lIn0.e30."}), follow_redirects=False)
    assert r.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)
    assert query["error"] == [error]
    assert query["state"] == ["s1"] and query["iss"] == ["https://id.test"]


def test_unknown_redirect_uri_is_never_redirected_to(world: World, http: TestClient) -> None:
    register_portal(world)
    _, challenge = _pkce()
    response = http.get("/authorize", params=_authorize_params(
        challenge, redirect_uri="https://evil.test/cb"), follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_login_form_gives_no_hint_whether_the_account_exists(world: World,
                                                             http: TestClient) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    _, challenge = _pkce()
    pages = []
    for name in (username, "nobody-by-this-name"):
        r = http.post("/authorize", data={**_authorize_params(challenge), "username": name,
                                          "password": "wrong password"},
                      follow_redirects=False)
        pages.append((r.status_code, r.text))
    assert pages[0] == pages[1]
    assert pages[0][0] == 401


def test_code_flow_over_http_and_oauth_error_codes(world: World, http: TestClient) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    verifier, challenge = _pkce()
    r = http.post("/authorize", data={**_authorize_params(challenge), "username": username,
                                      "password": PASSWORD,
                                      "totp_code": current_totp(world, secret)},
                  follow_redirects=False)
    assert r.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)
    assert query["state"] == ["s1"] and query["iss"] == ["https://id.test"]
    form = {"grant_type": "authorization_code", "client_id": "portal", "code": query["code"][0],
            "redirect_uri": "https://portal.test/cb", "code_verifier": verifier}
    ok = http.post("/token", data=form)
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    bearer = {"authorization": f"Bearer {ok.json()['access_token']}"}
    assert http.get("/userinfo", headers=bearer).status_code == 200
    assert http.get("/userinfo").status_code == 401
    again = http.post("/token", data=form)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    # The replay revoked what the code had yielded (RFC 6749 section 10.5).
    assert http.get("/userinfo", headers=bearer).status_code == 401
    bad_client = http.post("/token", data={**form, "client_id": "who"})
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    unsupported = http.post("/token", data={"grant_type": "password", "client_id": "portal"})
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_introspection_needs_a_confidential_client(world: World, http: TestClient) -> None:
    register_portal(world)
    key = MachineKey()
    register_machine(world, key, client_id="rs")
    public = http.post("/introspect", data={"client_id": "portal", "token": "x"})
    assert (public.status_code, public.json()["error"]) == (401, "invalid_client")
    r = http.post("/introspect", data={
        "client_id": "rs", "token": "not-a-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": key.assertion("rs", now=world.service.now)})
    assert r.json() == {"active": False}


def test_revoking_an_unknown_token_succeeds_silently(world: World, http: TestClient) -> None:
    register_portal(world)
    r = http.post("/revoke", data={"client_id": "portal", "token": "unknown"})
    assert r.status_code == 200


def _machine_form(key: MachineKey, client_id: str, world: World, **fields: str
                  ) -> dict[str, str]:
    return {"client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": key.assertion(client_id, now=world.service.now), **fields}


def _client_credentials_token(world: World, http: TestClient, key: MachineKey,
                              client_id: str) -> str:
    r = http.post("/token", data=_machine_form(key, client_id, world,
                                               grant_type="client_credentials"))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _portal_tokens(world: World) -> m.TokenResponse:
    """The tokens of a person's login at the (public) portal, with a refresh token."""
    s = world.service
    _, username, secret = enrol_login(world)
    login = s.login("portal", username, PASSWORD, current_totp(world, secret))
    verifier, challenge = _pkce()
    code = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri="https://portal.test/cb", scope="openid",
                       code_challenge=challenge, code_challenge_method="S256").code
    return s.token(m.TokenRequest(grant_type="authorization_code", client_id="portal",
                                  code=code, redirect_uri="https://portal.test/cb",
                                  code_verifier=verifier))


def test_a_client_introspects_only_its_own_tokens_and_those_meant_for_it(
        world: World, http: TestClient) -> None:
    # RFC 7662 section 4: no token scanning. Another back office learns nothing of the token,
    # as of one that does not exist; the resource server it is meant for (registered under
    # its audience name) and the client it was issued to see it active.
    keys = {name: MachineKey() for name in ("agency-app", "other-app", "urn:egov:registry")}
    for name, key in keys.items():
        register_machine(world, key, client_id=name)
    token = _client_credentials_token(world, http, keys["agency-app"], "agency-app")

    def introspect(client_id: str) -> dict[str, object]:
        r = http.post("/introspect", data=_machine_form(keys[client_id], client_id, world,
                                                        token=token))
        assert r.status_code == 200, r.text
        return dict(r.json())

    own = introspect("agency-app")
    assert own["active"] is True
    assert own["client_id"] == "agency-app"
    assert own["token_type"] == "Bearer"  # RFC 7662 2.2 after RFC 6749 5.1
    assert introspect("urn:egov:registry")["active"] is True
    assert introspect("other-app") == {"active": False}


def test_refresh_tokens_introspect_only_for_their_client(world: World) -> None:
    register_portal(world)
    key = MachineKey()
    other = register_machine(world, key, client_id="other-app")
    s = world.service
    tokens = _portal_tokens(world)
    own = s.introspect(s.get_client("portal"), tokens.refresh_token)
    assert own["active"] is True
    assert own["client_id"] == "portal"
    assert "token_type" not in own  # RFC 6749 5.1 types access tokens only
    assert s.introspect(other, tokens.refresh_token) == {"active": False}


def test_revoking_another_clients_token_is_refused_and_revokes_nothing(
        world: World, http: TestClient) -> None:
    # RFC 7009 section 2.1: the server checks the token was issued to the client asking, and
    # refuses the request if not; RFC 6749 5.2 names such a grant invalid_grant.
    keys = {name: MachineKey() for name in ("agency-app", "other-app")}
    for name, key in keys.items():
        register_machine(world, key, client_id=name)
    token = _client_credentials_token(world, http, keys["agency-app"], "agency-app")
    r = http.post("/revoke", data=_machine_form(keys["other-app"], "other-app", world,
                                                token=token))
    assert (r.status_code, r.json()["error"], r.json()["reason"]) == (
        400, "invalid_grant", "TOKEN_CLIENT_MISMATCH")
    still = http.post("/introspect", data=_machine_form(keys["agency-app"], "agency-app", world,
                                                        token=token))
    assert still.json()["active"] is True
    # Its own client may revoke it.
    r = http.post("/revoke", data=_machine_form(keys["agency-app"], "agency-app", world,
                                                token=token))
    assert r.status_code == 200
    gone = http.post("/introspect", data=_machine_form(keys["agency-app"], "agency-app", world,
                                                       token=token))
    assert gone.json() == {"active": False}


def test_revoking_another_clients_refresh_token_keeps_the_family(world: World,
                                                                 http: TestClient) -> None:
    register_portal(world)
    key = MachineKey()
    register_machine(world, key, client_id="other-app")
    tokens = _portal_tokens(world)
    r = http.post("/revoke", data=_machine_form(key, "other-app", world,
                                                token=tokens.refresh_token))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "client_id": "portal",
                                          "refresh_token": tokens.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
