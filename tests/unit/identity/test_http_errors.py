"""Every HTTP endpoint says what went wrong, and no more (starlette TestClient, real service on
SQLite): wrong credentials are one uniform answer, a lock-out says it is one, a fault of the
service is 500 server_error / a "service failed" page, an outage 503 temporarily_unavailable with
Retry-After, and nothing internal (reason code of the fault, traceback, SQL) reaches the browser
while the log line has the reason."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import shutil
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from egov_identity.domain import model as m
from egov_identity.domain.secrets_box import SecretBox
from egov_identity.http import build_http_app
from egov_identity.storage import tables as t
from identity_world import (
    PASSWORD,
    MachineKey,
    World,
    current_totp,
    enrol_login,
    make_service,
    register_machine,
    register_portal,
)

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is pinned
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REDIRECT = "https://portal.test/cb"
WRONG = "Login name, password or code is wrong."
STRANGER = b"s" * 32
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _client(world: World) -> TestClient:
    return TestClient(build_http_app(world.service), base_url="https://id.test",
                      raise_server_exceptions=False)


@pytest.fixture
def http(world: World) -> TestClient:
    return _client(world)


def _pkce() -> tuple[str, str]:
    v = secrets.token_urlsafe(48)
    return v, base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


def _login_form(challenge: str, username: str, password: str, totp: str = "",
                **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": "portal", "redirect_uri": REDIRECT,
            "scope": "openid profile", "state": "s1", "nonce": "n1",
            "code_challenge": challenge, "code_challenge_method": "S256",
            "username": username, "password": password, "totp_code": totp, **extra}


def _alert(page: str) -> str:
    found = re.search(r'<p role="alert">([^<]*)</p>', page)
    assert found, page
    return found.group(1)


def _records(caplog: pytest.LogCaptureFixture, endpoint: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "egov_identity.http" and getattr(r, "endpoint", "") == endpoint]


def _assert_nothing_internal(text: str, *internals: str) -> None:
    for word in ("Traceback", "sqlalchemy", "SELECT", "sqlite3", *internals):
        assert word not in text


def _database_gone(world: World, sqlite_url: str) -> None:
    """The database becomes unreachable: its file is replaced by a directory."""
    world.service.engine.dispose()
    path = Path(sa.make_url(sqlite_url).database or "")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.remove(f"{path}{suffix}")
    path.mkdir()


def _code(world: World, username: str, secret: bytes) -> tuple[str, str]:
    """An authorization code (and its verifier) issued through the domain."""
    s = world.service
    login = s.login("portal", username, PASSWORD, current_totp(world, secret))
    verifier, challenge = _pkce()
    auth = s.authorize(login_session_id=login.login_session_id, client_id="portal",
                       redirect_uri=REDIRECT, scope="openid profile", code_challenge=challenge,
                       code_challenge_method="S256")
    return auth.code, verifier


def _token_form(code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "client_id": "portal", "code": code,
            "redirect_uri": REDIRECT, "code_verifier": verifier}


# ------------------------------------------------------------------ the login form

def test_unknown_name_wrong_password_and_wrong_code_look_the_same(world: World,
                                                                  http: TestClient) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    _, challenge = _pkce()
    wrong_code = f"{(int(current_totp(world, secret)) + 1) % 1_000_000:06d}"
    answers = []
    for name, password, code in ((username, "lantern orbit velvet canyon!", ""),
                                 ("nobody-by-this-name", PASSWORD, ""),
                                 (username, PASSWORD, wrong_code)):
        r = http.post("/authorize", data=_login_form(challenge, name, password, code),
                      follow_redirects=False)
        answers.append((r.status_code, _alert(r.text), r.headers.get("retry-after")))
    assert answers == [(401, WRONG, None)] * 3


def test_a_locked_account_says_it_is_locked_and_when_to_come_back(world: World,
                                                                   http: TestClient) -> None:
    register_portal(world)
    register_portal(world, "portal-2")
    _, username, _ = enrol_login(world)
    _, challenge = _pkce()
    answers = []
    for name, client_id in ((username, "portal"), ("nobody-by-this-name", "portal-2")):
        form = _login_form(challenge, name, "not it at all", client_id=client_id)
        statuses = [http.post("/authorize", data=form, follow_redirects=False).status_code
                    for _ in range(3)]
        assert statuses == [401, 401, 401]
        locked = http.post("/authorize", data={**form, "password": PASSWORD},
                           follow_redirects=False)
        answers.append((locked.status_code, _alert(locked.text),
                        locked.headers["retry-after"]))
        assert "ACCOUNT_LOCKED" not in locked.text
    # The same for a name nobody has: a lock-out tells nothing about the account.
    assert answers == [(429, "This account is temporarily locked after too many failed "
                             "attempts. Try again in 5 minutes.", "301")] * 2


def test_a_locked_portal_says_so(world: World, http: TestClient) -> None:
    register_portal(world)
    _, challenge = _pkce()
    for i in range(5):  # password spraying: many names through one client
        form = _login_form(challenge, f"someone-{i}", "a password guess")
        assert http.post("/authorize", data=form).status_code == 401
    r = http.post("/authorize", data=_login_form(challenge, "someone-else", "a password guess"))
    assert r.status_code == 429
    assert _alert(r.text).startswith("Too many failed logins through this service.")
    assert int(r.headers["retry-after"]) > 0


def test_a_login_that_needs_the_code_asks_for_it_without_checking_the_password(
        world: World, http: TestClient) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    _, challenge = _pkce()
    for _ in range(4):  # more than max_failures: none of these counts as a failure
        r = http.post("/authorize", data=_login_form(challenge, username, "anything at all",
                                                     acr_values="urn:egov:aal:2"),
                      follow_redirects=False)
        assert r.status_code == 400
        assert "authenticator app" in _alert(r.text)
    ok = http.post("/authorize", data=_login_form(challenge, username, PASSWORD,
                                                  current_totp(world, secret),
                                                  acr_values="urn:egov:aal:2"),
                   follow_redirects=False)
    assert ok.status_code == 302 and "code=" in ok.headers["location"]


def test_acr_values_that_name_no_aal_are_ignored_not_a_server_error(
        world: World, http: TestClient) -> None:
    """acr_values is a request (OIDC Core 3.1.2.1): "²" is a digit to str.isdigit but not to
    int(), and 5000 digits are more than int() reads; neither names an AAL."""
    register_portal(world)
    _, username, _ = enrol_login(world)
    _, challenge = _pkce()
    for acr in ("\u00b2", "urn:egov:aal:\u0663", "9" * 5000):
        r = http.post("/authorize", data=_login_form(challenge, username, PASSWORD,
                                                     acr_values=acr),
                      follow_redirects=False)
        assert r.status_code == 302 and "code=" in r.headers["location"], acr


def test_a_fault_during_login_is_a_service_failed_page_not_wrong_credentials(
        world: World, http: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    s = world.service
    person_id = s.login("portal", username, PASSWORD).person_id
    world.advance(30)
    with s.engine.begin() as conn:  # the TOTP seed was re-sealed under a KEK we lack
        conn.execute(t.persons.update().where(t.persons.c.person_id == person_id).values(
            totp_secret_enc=SecretBox(STRANGER).seal(secret, person_id)))
    _, challenge = _pkce()
    with caplog.at_level(logging.INFO, logger="egov_identity"):
        r = http.post("/authorize", data=_login_form(challenge, username, PASSWORD,
                                                     current_totp(world, secret)),
                      follow_redirects=False)
    assert r.status_code == 500
    alert = _alert(r.text)
    assert alert.startswith("The login service failed.") and WRONG not in r.text
    _assert_nothing_internal(r.text, "KEK_UNKNOWN", "KEK", person_id)
    [line] = _records(caplog, "/authorize")
    assert line.levelno == logging.ERROR
    assert line.reason == "KEK_UNKNOWN"  # type: ignore[attr-defined]
    assert line.reference in alert  # type: ignore[attr-defined]


def test_a_database_outage_at_the_login_form_is_503_with_retry_after(
        world: World, http: TestClient, sqlite_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    register_portal(world)
    _, username, _ = enrol_login(world)
    _, challenge = _pkce()
    assert http.get("/authorize", params=_login_form(challenge, "", "")).status_code == 200
    _database_gone(world, sqlite_url)
    with caplog.at_level(logging.INFO, logger="egov_identity"):
        r = http.post("/authorize", data=_login_form(challenge, username, "a wrong password"),
                      follow_redirects=False)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "30"
    assert "temporarily unavailable" in _alert(r.text) and WRONG not in r.text
    _assert_nothing_internal(r.text, "DATABASE_UNAVAILABLE")
    [line] = _records(caplog, "/authorize")
    assert line.reason == "DATABASE_UNAVAILABLE"  # type: ignore[attr-defined]
    assert line.driver_error == "OperationalError"  # type: ignore[attr-defined]
    assert line.reference in r.text  # type: ignore[attr-defined]
    assert username not in caplog.text and "SELECT" not in caplog.text


def test_an_unverifiable_client_during_an_outage_is_a_page_never_a_redirect(
        world: World, sqlite_url: str) -> None:
    _database_gone(world, sqlite_url)
    _, challenge = _pkce()
    r = _client(world).get("/authorize", params=_login_form(challenge, "", ""),
                           follow_redirects=False)
    assert r.status_code == 503 and "location" not in r.headers
    assert r.headers["retry-after"] == "30"


def test_a_fault_after_login_goes_back_to_the_client_as_server_error(
        world: World, http: TestClient, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)

    def broken(*_: Any) -> m.AuthorizationResult:
        raise RuntimeError("disk full while writing /var/lib/secret-path")

    monkeypatch.setattr(world.service, "issue_code", broken)
    _, challenge = _pkce()
    with caplog.at_level(logging.INFO, logger="egov_identity"):
        r = http.post("/authorize", data=_login_form(challenge, username, PASSWORD,
                                                     current_totp(world, secret)),
                      follow_redirects=False)
    # RFC 6749 section 4.1.2.1: the client and redirect URI are verified, so it is told.
    assert r.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)
    assert query["error"] == ["server_error"] and query["state"] == ["s1"]
    _assert_nothing_internal(r.headers["location"], "disk", "secret-path", "RuntimeError")
    [line] = _records(caplog, "/authorize")
    assert line.reason == "INTERNAL" and line.exc_info  # type: ignore[attr-defined]
    assert line.reference in query["error_description"][0]  # type: ignore[attr-defined]


def test_an_oversized_login_form_is_refused_plainly(world: World, http: TestClient) -> None:
    register_portal(world)
    r = http.post("/authorize", data={"client_id": "portal", "x": "y" * 70_000})
    assert r.status_code == 413


# ------------------------------------------------------------------ token endpoint

def test_token_endpoint_fault_is_500_server_error_without_the_reason(
        world: World, http: TestClient, sqlite_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    code, verifier = _code(world, username, secret)
    # Another replica replaced the signing key under a KEK this process was not given.
    other = make_service(sqlite_url, world.clock, world.population, kek=STRANGER)
    other.keyring.rotate_immediately("ES256")
    other.engine.dispose()
    world.advance(2)
    with caplog.at_level(logging.INFO, logger="egov_identity"):
        r = http.post("/token", data=_token_form(code, verifier))
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "server_error" and "reason" not in body
    assert r.headers["cache-control"] == "no-store"
    _assert_nothing_internal(r.text, "KEK")
    [line] = _records(caplog, "/token")
    assert line.reason == "KEK_UNKNOWN"  # type: ignore[attr-defined]
    assert line.reference in body["error_description"]  # type: ignore[attr-defined]


def test_token_endpoint_during_a_database_outage_is_503_temporarily_unavailable(
        world: World, http: TestClient, sqlite_url: str) -> None:
    register_portal(world)
    _, username, secret = enrol_login(world)
    code, verifier = _code(world, username, secret)
    assert http.post("/token", data={"grant_type": "authorization_code", "client_id": "portal",
                                     "code": "wrong"}).json()["error"] == "invalid_grant"
    _database_gone(world, sqlite_url)
    r = http.post("/token", data=_token_form(code, verifier))
    assert r.status_code == 503
    assert r.json()["error"] == "temporarily_unavailable"
    assert r.headers["retry-after"] == "30"
    _assert_nothing_internal(r.text, "DATABASE")


def test_token_endpoint_client_errors_keep_their_rfc_6749_codes(world: World,
                                                                 http: TestClient) -> None:
    register_portal(world)
    key = MachineKey()
    register_machine(world, key, client_id="rs")
    bad_scope = http.post("/token", data={
        "grant_type": "client_credentials", "client_id": "rs", "scope": "identity:admin",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion("rs", now=world.service.now)})
    assert (bad_scope.status_code, bad_scope.json()["error"]) == (400, "invalid_scope")
    assert bad_scope.json()["reason"] == "INVALID_SCOPE"
    not_allowed = http.post("/token", data={"grant_type": "client_credentials",
                                            "client_id": "portal"})
    assert (not_allowed.status_code, not_allowed.json()["error"]) == (400,
                                                                     "unauthorized_client")
    missing = http.post("/token", data={})
    assert (missing.status_code, missing.json()["error"]) == (400, "unsupported_grant_type")


def test_a_body_that_is_no_acceptable_form_is_invalid_request_not_a_server_error(
        world: World, http: TestClient) -> None:
    """Too many fields (3 KB of them), a multipart body without its boundary, and a body
    larger than the limit sent chunked (no Content-Length to refuse it by) are the client's
    mistakes: 400 invalid_request at every form endpoint, never 500."""
    register_portal(world)
    form = {"content-type": "application/x-www-form-urlencoded"}

    def chunked() -> Any:
        yield b"grant_type=refresh_token&client_id=portal&refresh_token="
        for _ in range(40):
            yield b"x" * 32_768

    bodies = [(b"a=&" * 1001, form), (b"grant_type=refresh_token",
                                      {"content-type": "multipart/form-data"})]
    for path in ("/token", "/revoke", "/introspect", "/bc-authorize"):
        for body, headers in bodies:
            r = http.post(path, content=body, headers=headers)
            assert (r.status_code, r.json()["error"]) == (400, "invalid_request"), path
    r = http.post("/token", content=chunked(), headers=form)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert r.json()["error_description"] == "request too large"


def test_a_locked_client_is_429_with_retry_after(world: World, http: TestClient) -> None:
    key = MachineKey()
    register_machine(world, key, client_id="rs")
    forged = MachineKey().assertion("rs", now=world.service.now)  # not its key
    form = {"grant_type": "client_credentials", "client_id": "rs",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": forged}
    answers = [http.post("/token", data=form) for _ in range(6)]
    assert [(a.status_code, a.json()["error"]) for a in answers[:5]] == [
        (401, "invalid_client")] * 5
    assert (answers[5].status_code, answers[5].json()["error"]) == (429, "invalid_client")
    assert answers[5].json()["reason"] == "CLIENT_LOCKED"
    assert int(answers[5].headers["retry-after"]) > 0


# ------------------------------------------------------------------ userinfo (RFC 6750)

def _tokens(world: World, http: TestClient) -> dict[str, Any]:
    register_portal(world)
    _, username, secret = enrol_login(world)
    code, verifier = _code(world, username, secret)
    tokens: dict[str, Any] = http.post("/token", data=_token_form(code, verifier)).json()
    return tokens


def test_userinfo_challenges_follow_rfc_6750(world: World, http: TestClient) -> None:
    tokens = _tokens(world, http)
    no_token = http.get("/userinfo")
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == 'Bearer realm="https://id.test"'
    bad = http.get("/userinfo", headers={"authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    twice = http.post("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"},
                      data={"access_token": tokens["access_token"]})
    assert twice.status_code == 400
    assert 'error="invalid_request"' in twice.headers["www-authenticate"]
    in_body = http.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert in_body.status_code == 200 and in_body.json()["sub"]
    narrower = http.post("/token", data={"grant_type": "refresh_token", "client_id": "portal",
                                         "refresh_token": tokens["refresh_token"],
                                         "scope": "profile"}).json()
    no_openid = http.get("/userinfo",
                         headers={"authorization": f"Bearer {narrower['access_token']}"})
    assert no_openid.status_code == 403
    challenge = no_openid.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="openid"' in challenge


def test_userinfo_during_a_database_outage_is_503(world: World, http: TestClient,
                                                  sqlite_url: str) -> None:
    tokens = _tokens(world, http)
    _database_gone(world, sqlite_url)
    r = http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    assert r.headers["retry-after"] == "30"
    assert "www-authenticate" not in r.headers  # the token is not what is wrong


# ------------------------------------------------------------------ revoke, introspect, CIBA

def test_revoke_and_introspect_faults_are_server_errors_not_client_errors(
        world: World, http: TestClient, sqlite_url: str) -> None:
    key = MachineKey()
    register_machine(world, key, client_id="rs")
    assert http.post("/introspect", data={
        "client_id": "rs", "token": "x", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion("rs", now=world.service.now)}).status_code == 200
    _database_gone(world, sqlite_url)
    for path in ("/revoke", "/introspect"):
        r = http.post(path, data={
            "client_id": "rs", "token": "x", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.assertion("rs", now=world.service.now)})
        assert r.status_code == 503, path
        assert r.json()["error"] == "temporarily_unavailable"
        assert r.headers["retry-after"] == "30"


def test_backchannel_errors_use_ciba_codes(world: World, http: TestClient,
                                           sqlite_url: str) -> None:
    key = MachineKey()
    register_machine(world, key, client_id="ciba-portal", grant_types=(m.GRANT_CIBA,),
                     scopes=("openid", "profile"))
    form = {"client_id": "ciba-portal", "login_hint": "user0", "scope": "openid",
            "binding_message": "x" * 65}
    long = http.post("/bc-authorize", data={
        **form, "client_assertion": key.assertion("ciba-portal", now=world.service.now)})
    assert (long.status_code, long.json()["error"]) == (400, "invalid_binding_message")
    spoofing = http.post("/bc-authorize", data={
        **form, "binding_message": "Pay 10 THB\u202e00001",
        "client_assertion": key.assertion("ciba-portal", now=world.service.now)})
    assert (spoofing.status_code, spoofing.json()["error"], spoofing.json()["reason"]) == (
        400, "invalid_binding_message", "BINDING_MESSAGE_INVALID")
    # Section 13: the OP denies a request it cannot serve before anyone is asked (403).
    aal3 = http.post("/bc-authorize", data={
        **form, "binding_message": "ok", "acr_values": "urn:egov:aal:3",
        "client_assertion": key.assertion("ciba-portal", now=world.service.now)})
    assert (aal3.status_code, aal3.json()["error"], aal3.json()["reason"]) == (
        403, "access_denied", "ACR_NOT_MET")
    _database_gone(world, sqlite_url)
    down = http.post("/bc-authorize", data={
        **form, "binding_message": "ok",
        "client_assertion": key.assertion("ciba-portal", now=world.service.now)})
    assert down.status_code == 503 and down.json()["error"] == "temporarily_unavailable"


def test_jwks_during_a_database_outage_is_503_and_not_cached(world: World, http: TestClient,
                                                             sqlite_url: str) -> None:
    assert http.get("/jwks").status_code == 200
    world.advance(2)  # past the key ring's one-second reload
    _database_gone(world, sqlite_url)
    r = http.get("/jwks")
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store"


def test_database_gone_helper_really_breaks_the_database(world: World, sqlite_url: str) -> None:
    _database_gone(world, sqlite_url)
    with pytest.raises(sa.exc.OperationalError):
        world.service.get_client("nobody")
    shutil.rmtree(Path(sa.make_url(sqlite_url).database or ""))
