"""Faults of a real ``python -m egov_identity`` process over HTTP: a replica left behind by a KEK
rotation and a database that disappears answer "the service failed" / "temporarily
unavailable", never "wrong password" or an OAuth client error, and nothing internal reaches the
browser while the log says why. Inconsistent settings stop start-up with one line."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from egov_clients.identity import MachineKey
from identity_process import (
    PASSWORD,
    PORTAL_ID,
    REDIRECT,
    RunningIdentity,
    base_env,
    next_totp,
    running_identity,
    setup_citizen,
)


def _command(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m egov_identity <args>`` with the server's settings; exits by itself."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, **env, "EGOV_IDENTITY_DATA_DIR": str(data_dir),
            "EGOV_IDENTITY_GRPC_LISTEN": "127.0.0.1:0", "EGOV_IDENTITY_HTTP_LISTEN": "127.0.0.1:0"}
    return subprocess.run([sys.executable, "-m", "egov_identity", *args], env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def _new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _poll(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")


def _login(identity: RunningIdentity, username: str, password: str, code: str
           ) -> tuple[httpx.Response, str]:
    """The login form as a browser posts it; returns (response, PKCE verifier)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    response = httpx.post(f"{identity.issuer}/authorize", data={
        "response_type": "code", "client_id": PORTAL_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": "st", "code_challenge": challenge,
        "code_challenge_method": "S256", "username": username, "password": password,
        "totp_code": code})
    return response, verifier


def _alert(page: str) -> str:
    found = re.search(r'<p role="alert">([^<]*)</p>', page)
    assert found, page
    return found.group(1)


def _log_lines(identity: RunningIdentity) -> list[dict[str, Any]]:
    lines = []
    for raw in identity.process.log_path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def _fault_line(identity: RunningIdentity, reference: str) -> dict[str, Any]:
    [line] = [x for x in _log_lines(identity) if x.get("reference") == reference]
    return line


def _reference(text: str) -> str:
    found = re.search(r"reference ([0-9a-f]{12})", text)
    assert found, text
    return found.group(1)


def test_a_replica_without_the_new_kek_fails_as_a_fault_not_as_wrong_credentials(
        tmp_path: Path) -> None:
    admin_key = MachineKey()
    kek_old, kek_new = _new_kek(), _new_kek()
    env = base_env(tmp_path, admin_key, kek=kek_old,
                   database_url=f"sqlite:///{tmp_path / 'identity.db'}")
    rotated_env = {**env, "EGOV_IDENTITY_KEK": kek_new, "EGOV_IDENTITY_PREVIOUS_KEKS": kek_old}
    with running_identity(env, tmp_path / "old-replica") as identity:
        username, secret = setup_citizen(identity, admin_key)
        login, verifier = _login(identity, username, PASSWORD, next_totp(secret))
        assert login.status_code == 302
        code = re.search(r"[?&]code=([^&]+)", login.headers["location"])
        assert code is not None

        # Another operator replaces the signing key under the new KEK; this replica lacks it.
        rotated = _command(rotated_env, tmp_path / "cli", "rotate-signing-key", "--alg", "ES256")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = re.search(r"ES256: new signing key (\S+),", rotated.stdout)
        assert new_kid is not None
        _poll(lambda: new_kid[1] in httpx.get(f"{identity.issuer}/jwks").text,
              "the replica sees the new key")
        token = httpx.post(f"{identity.issuer}/token", data={
            "grant_type": "authorization_code", "client_id": PORTAL_ID, "code": code[1],
            "redirect_uri": REDIRECT, "code_verifier": verifier})
        assert token.status_code == 500
        body = token.json()
        assert body["error"] == "server_error" and "reason" not in body
        assert "KEK" not in token.text
        line = _fault_line(identity, _reference(body["error_description"]))
        assert (line["level"], line["reason"], line["endpoint"]) == ("ERROR", "KEK_UNKNOWN",
                                                                     "/token")

        # ... and re-seals the TOTP seeds under it: the login form says the service failed.
        rewrap = _command(rotated_env, tmp_path / "cli", "rewrap-kek")
        assert rewrap.returncode == 0, rewrap.stderr
        page, _ = _login(identity, username, PASSWORD, next_totp(secret))
        assert page.status_code == 500
        alert = _alert(page.text)
        assert alert.startswith("The login service failed.")
        assert "wrong" not in alert and "KEK" not in page.text and "Traceback" not in page.text
        assert _fault_line(identity, _reference(alert))["reason"] == "KEK_UNKNOWN"
        wrong, _ = _login(identity, username, "not the password at all", next_totp(secret))
        assert (wrong.status_code, _alert(wrong.text)) == (
            401, "Login name, password or code is wrong.")
        for output in (identity.process.log_path.read_text(), token.text, page.text):
            assert kek_old not in output and kek_new not in output


@pytest.mark.postgres
def test_a_database_that_disappears_is_503_temporarily_unavailable_everywhere(
        tmp_path: Path, postgres_url: str) -> None:
    admin_key = MachineKey()
    env = base_env(tmp_path, admin_key, database_url=postgres_url)
    with running_identity(env, tmp_path / "serve") as identity:
        username, secret = setup_citizen(identity, admin_key)
        tokens = identity.client.login_and_get_tokens(
            PORTAL_ID, REDIRECT, username, PASSWORD, totp_secret=secret, scope="openid",
            totp_at=time.time() + 30)

        url = sa.make_url(postgres_url)
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                                 poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        admin.dispose()

        refresh = httpx.post(f"{identity.issuer}/token", data={
            "grant_type": "refresh_token", "client_id": PORTAL_ID,
            "refresh_token": tokens.refresh_token})
        assert refresh.status_code == 503
        assert refresh.json()["error"] == "temporarily_unavailable"
        assert refresh.headers["retry-after"] == "30"
        info = httpx.get(f"{identity.issuer}/userinfo",
                         headers={"authorization": f"Bearer {tokens.access_token}"})
        assert (info.status_code, info.json()["error"]) == (503, "temporarily_unavailable")
        page, _ = _login(identity, username, "a wrong password for sure", "")
        assert page.status_code == 503 and page.headers["retry-after"] == "30"
        assert "temporarily unavailable" in _alert(page.text)
        assert httpx.get(f"{identity.issuer}/healthz").status_code == 200
        for response in (refresh, info, page):
            assert "psycopg" not in response.text and "SELECT" not in response.text
        faults = [x for x in _log_lines(identity) if x.get("reason") == "DATABASE_UNAVAILABLE"]
        assert {x["endpoint"] for x in faults} >= {"/token", "/userinfo", "/authorize"}
        assert _reference(refresh.json()["error_description"]) in {x["reference"]
                                                                   for x in faults}
        log = identity.process.log_path.read_text()
        assert tokens.refresh_token not in log and "a wrong password" not in log


def test_a_publish_ahead_longer_than_the_rotation_stops_start_up_with_one_line(
        tmp_path: Path) -> None:
    env = {**base_env(tmp_path, MachineKey()),
           "EGOV_IDENTITY_KEY_ROTATION_SECONDS": "86400",
           "EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS": "86400"}
    started = _command(env, tmp_path / "serve")  # the server itself, not a subcommand
    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [
        "egov identity: configuration error: EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS: (86400) "
        "must be shorter than EGOV_IDENTITY_KEY_ROTATION_SECONDS (86400): the next key is "
        "published that long before the current one stops signing"]
