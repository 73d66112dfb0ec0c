"""The OIDC HTTP endpoints in process (starlette TestClient): error mapping and safety."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import urllib.parse
import warnings
from typing import Any

import jwt
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


# ------------------------------------------------------------------ the authorization endpoint

def _redirect_query(response: Any) -> dict[str, list[str]]:
    """The query of a redirect back to the portal (failing on anything else)."""
    assert response.status_code == 302, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith("https://portal.test/cb?"), location
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)


def _hidden_fields(page: str) -> dict[str, str]:
    """What the login form sends back unseen, as a browser reads it."""
    return {name: html.unescape(value) for name, value in re.findall(
        r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page)}


def _csp(response: Any) -> dict[str, str]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: " ".join(d[1:]) for d in directives if d}


def _code_input(page: str) -> str:
    found = re.search(r'<input name="totp_code"[^>]*>', page)
    assert found, page
    return found.group(0)


def _exchange(http: TestClient, code: str, verifier: str) -> dict[str, Any]:
    r = http.post("/token", data={"grant_type": "authorization_code", "client_id": "portal",
                                  "code": code, "redirect_uri": "https://portal.test/cb",
                                  "code_verifier": verifier})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _acr(id_token: str) -> str:
    return str(jwt.decode(id_token, options={"verify_signature": False})["acr"])


def test_login_pages_forbid_framing_but_not_where_the_login_redirects_to(
        world: World, http: TestClient) -> None:
    """Chromium applies CSP form-action to the redirects that follow a form's submission: with
    form-action 'self' it blocked the 302 to the portal after a good login, so the login never
    reached the portal in Chrome or Edge. (The portal may redirect again from its callback, to
    any origin, in the same navigation: no list of origins would do.) Clickjacking protection
    stays: no page of the login may be framed."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    _, challenge = _pkce()
    pages = {
        "login form": http.get("/authorize", params=_authorize_params(challenge)),
        "form again": http.post("/authorize", data={**_authorize_params(challenge),
                                                    "username": username,
                                                    "password": "not the password"}),
        "message page": http.get("/authorize", params=_authorize_params(
            challenge, redirect_uri="https://evil.test/cb")),
    }
    assert [r.status_code for r in pages.values()] == [200, 401, 400]
    for what, page in pages.items():
        csp = _csp(page)
        assert "form-action" not in csp, what
        assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'", what
        assert page.headers["x-frame-options"] == "DENY", what
    assert '<form method="post" action="authorize">' in pages["login form"].text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_prompt_none_is_login_required_without_a_login_form(world: World, http: TestClient,
                                                            method: str) -> None:
    """OIDC Core 3.1.2.1 and 3.1.2.6: prompt=none shows no page; this provider keeps no login
    session from one request to the next, so nobody is ever logged in already."""
    register_portal(world)
    _, challenge = _pkce()
    params = _authorize_params(challenge, prompt="none")
    r = (http.get("/authorize", params=params, follow_redirects=False) if method == "GET"
         else http.post("/authorize", data=params, follow_redirects=False))
    query = _redirect_query(r)
    assert query["error"] == ["login_required"]
    assert query["state"] == ["s1"] and query["iss"] == ["https://id.test"]
    assert "code" not in query


def test_prompt_none_with_another_value_is_invalid_request(world: World,
                                                           http: TestClient) -> None:
    register_portal(world)
    _, challenge = _pkce()
    query = _redirect_query(http.get("/authorize", params=_authorize_params(
        challenge, prompt="none login"), follow_redirects=False))
    assert query["error"] == ["invalid_request"]


@pytest.mark.parametrize("prompt", ["login", "consent", "select_account", "login consent"])
def test_prompt_login_consent_and_select_account_are_met_by_the_login_form(
        world: World, http: TestClient, prompt: str) -> None:
    """Every login here is a fresh one (login), the person names the account by its login name
    (select_account), and the form says what the portal will receive, which logging in grants
    (consent): the login form meets each, and the login goes through."""
    register_portal(world)
    _, username, secret = enrol_login(world)
    verifier, challenge = _pkce()
    page = http.get("/authorize", params=_authorize_params(
        challenge, prompt=prompt, scope="openid profile identifier"))
    assert page.status_code == 200 and 'role="alert"' not in page.text
    assert "Citizen Portal will receive" in page.text
    assert "your name and date of birth" in page.text
    assert "your national identification number" in page.text
    r = http.post("/authorize", data={**_hidden_fields(page.text), "username": username,
                                      "password": PASSWORD,
                                      "totp_code": current_totp(world, secret)},
                  follow_redirects=False)
    assert _exchange(http, _redirect_query(r)["code"][0], verifier)["id_token"]


def test_an_authorization_request_posted_by_the_portal_shows_the_login_form(
        world: World, http: TestClient) -> None:
    """OIDC Core 3.1.2.1: the endpoint MUST take the request by POST as well as by GET. A
    portal's auto-submitted form carries no credentials: it is no failed login, and more of
    them than the portal's lock-out allows lock nothing."""
    register_portal(world)
    _, username, secret = enrol_login(world)
    verifier, challenge = _pkce()
    for _ in range(6):  # the portal is locked after 5 failed logins
        page = http.post("/authorize", data=_authorize_params(challenge),
                         follow_redirects=False)
        assert page.status_code == 200 and 'role="alert"' not in page.text
        assert 'name="password"' in page.text
    hidden = _hidden_fields(page.text)
    assert hidden["code_challenge"] == challenge and hidden["state"] == "s1"
    r = http.post("/authorize", data={**hidden, "username": username, "password": PASSWORD,
                                      "totp_code": current_totp(world, secret)},
                  follow_redirects=False)
    assert _redirect_query(r)["state"] == ["s1"]
    assert _exchange(http, _redirect_query(r)["code"][0], verifier)["access_token"]


@pytest.mark.parametrize(("extra", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": ""}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": "https://portal.test/request/1"}, "request_uri_not_supported"),
    ({"response_mode": "form_post"}, "invalid_request"),
    ({"scope": "openid identity:admin"}, "invalid_scope"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"claims": "[1, 2]"}, "invalid_request"),
    ({"prompt": "none"}, "login_required"),
])
def test_a_request_is_checked_the_same_before_the_form_and_with_the_login(
        world: World, http: TestClient, extra: dict[str, str], error: str) -> None:
    """One check for both ways in (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6): what the GET refuses
    before the person types anything, the login form's POST refuses too, with the same error
    and without trying the credentials (the code typed stays unused)."""
    register_portal(world)
    _, username, secret = enrol_login(world)
    verifier, challenge = _pkce()
    params = _authorize_params(challenge, **extra)
    before = _redirect_query(http.get("/authorize", params=params, follow_redirects=False))
    totp = current_totp(world, secret)
    login = _redirect_query(http.post("/authorize", data={
        **params, "username": username, "password": PASSWORD, "totp_code": totp},
        follow_redirects=False))
    assert before["error"] == login["error"] == [error]
    assert "code" not in login and login["state"] == ["s1"]
    ok = http.post("/authorize", data={**_authorize_params(challenge), "username": username,
                                       "password": PASSWORD, "totp_code": totp},
                   follow_redirects=False)
    assert _exchange(http, _redirect_query(ok)["code"][0], verifier)["access_token"]


@pytest.mark.parametrize("mode", ["form_post", "fragment", "query.jwt", "web_message"])
def test_a_response_mode_other_than_query_is_refused_not_ignored(world: World, http: TestClient,
                                                                 mode: str) -> None:
    """Discovery says response_modes_supported ["query"]: a portal that asked for its answer
    posted or in the fragment would not find a code in the query, so it is told at once."""
    register_portal(world)
    _, challenge = _pkce()
    query = _redirect_query(http.get("/authorize", params=_authorize_params(
        challenge, response_mode=mode), follow_redirects=False))
    assert query["error"] == ["invalid_request"]
    assert "response_mode" in query["error_description"][0]
    page = http.get("/authorize", params=_authorize_params(challenge, response_mode="query"))
    assert page.status_code == 200 and 'name="password"' in page.text


def test_discovery_lists_only_the_acr_values_a_login_reaches(http: TestClient) -> None:
    """A password reaches AAL1, a password and an authenticator code (or a CIBA approval) AAL2;
    no login path reaches AAL3 (OIDC Discovery 1.0 section 3: the values supported)."""
    meta = http.get("/.well-known/openid-configuration").json()
    assert meta["acr_values_supported"] == ["urn:egov:aal:1", "urn:egov:aal:2"]


@pytest.mark.parametrize("extra", [
    {"acr_values": "urn:egov:aal:3"},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True,
                                                "values": ["urn:egov:aal:3"]}}})},
])
def test_a_request_only_aal3_meets_is_refused_before_the_login_form(
        world: World, http: TestClient, extra: dict[str, str]) -> None:
    register_portal(world)
    _, challenge = _pkce()
    query = _redirect_query(http.get("/authorize", params=_authorize_params(challenge, **extra),
                                     follow_redirects=False))
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"]


@pytest.mark.parametrize("acr_values", ["urn:egov:aal:1 urn:egov:aal:2",
                                        "urn:egov:aal:2 urn:egov:aal:1"])
def test_acr_values_lists_what_is_acceptable_so_a_password_meets_aal1_or_aal2(
        world: World, http: TestClient, acr_values: str) -> None:
    """OIDC Core 3.1.2.1: acr_values are the classes the portal accepts, in order of
    preference, not a minimum: a password alone meets "AAL1 or AAL2", and the ID token says
    what the login reached."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    verifier, challenge = _pkce()
    page = http.get("/authorize", params=_authorize_params(challenge, acr_values=acr_values))
    assert page.status_code == 200 and "required" not in _code_input(page.text)
    r = http.post("/authorize", data={**_hidden_fields(page.text), "username": username,
                                      "password": PASSWORD, "totp_code": ""},
                  follow_redirects=False)
    tokens = _exchange(http, _redirect_query(r)["code"][0], verifier)
    assert _acr(tokens["id_token"]) == "urn:egov:aal:1"


@pytest.mark.parametrize("extra", [
    {"acr_values": "urn:egov:aal:2"},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True,
                                                "values": ["urn:egov:aal:2"]}}})},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True,
                                                "value": "urn:egov:aal:2"}}}),
     "acr_values": "urn:egov:aal:1"},
])
def test_the_form_asks_for_the_code_whichever_way_the_request_needs_aal2(
        world: World, http: TestClient, extra: dict[str, str]) -> None:
    """An essential acr in the claims parameter (OIDC Core 5.5.1.1) is a requirement as much
    as acr_values naming AAL2 alone: the form asks for the authenticator code, and a login
    without it is asked again (not counted as a failure, the password not checked) rather than
    sent back to the portal with access_denied."""
    register_portal(world)
    _, username, secret = enrol_login(world)
    verifier, challenge = _pkce()
    page = http.get("/authorize", params=_authorize_params(challenge, **extra))
    assert page.status_code == 200 and "required" in _code_input(page.text)
    hidden = _hidden_fields(page.text)
    for _ in range(4):  # more than the 3 failures that lock the account
        again = http.post("/authorize", data={**hidden, "username": username,
                                              "password": "anything at all", "totp_code": ""},
                          follow_redirects=False)
        assert again.status_code == 400 and "location" not in again.headers
        assert "authenticator app" in again.text
    r = http.post("/authorize", data={**hidden, "username": username, "password": PASSWORD,
                                      "totp_code": current_totp(world, secret)},
                  follow_redirects=False)
    tokens = _exchange(http, _redirect_query(r)["code"][0], verifier)
    assert _acr(tokens["id_token"]) == "urn:egov:aal:2"


def test_revoking_a_refresh_token_revokes_the_access_tokens_of_its_grant(
        world: World, http: TestClient) -> None:
    """RFC 7009 section 2.1: revoking a refresh token should invalidate the access tokens of
    the same grant: the one of the login and those of every refresh since. Another login's
    tokens stay valid."""
    register_portal(world)
    s = world.service
    first = _portal_tokens(world)
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "client_id": "portal",
                                          "refresh_token": first.refresh_token}).json()
    _, other_name, _ = enrol_login(world, 1)
    other_login = s.login("portal", other_name, PASSWORD)
    other_verifier, other_challenge = _pkce()
    other_code = s.authorize(login_session_id=other_login.login_session_id,
                             client_id="portal", redirect_uri="https://portal.test/cb",
                             scope="openid", code_challenge=other_challenge,
                             code_challenge_method="S256").code
    other = _exchange(http, other_code, other_verifier)

    def userinfo(access_token: str) -> int:
        return http.get("/userinfo", headers={"authorization": f"Bearer {access_token}"}
                        ).status_code

    assert [userinfo(t) for t in (first.access_token, refreshed["access_token"])] == [200, 200]
    r = http.post("/revoke", data={"client_id": "portal",
                                   "token": refreshed["refresh_token"]})
    assert r.status_code == 200
    for access_token in (first.access_token, refreshed["access_token"]):
        gone = http.get("/userinfo", headers={"authorization": f"Bearer {access_token}"})
        assert gone.status_code == 401
        assert 'error="invalid_token"' in gone.headers["www-authenticate"]
    assert userinfo(other["access_token"]) == 200
    again = http.post("/token", data={"grant_type": "refresh_token", "client_id": "portal",
                                      "refresh_token": other["refresh_token"]})
    assert again.status_code == 200
