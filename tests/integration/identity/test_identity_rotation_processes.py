"""KEK and signing-key rotation with real ``python -m egov_identity`` processes: restarts with a
new KEK, ``rewrap-kek``, dropping the old KEK, a wrong KEK, and ``rotate-signing-key`` seen by a
relying party through the JWKS endpoint (egov_pki.tokens.HttpJwks)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from egov.identity.v1 import oidc_pb2
from egov_clients.identity import IdentityClient, MachineKey, Tokens
from egov_common.errors import EgovError
from egov_pki.tokens import HttpJwks, TokenVerifier
from identity_process import (
    PASSWORD,
    PORTAL_ID,
    REDIRECT,
    RunningIdentity,
    base_env,
    setup_citizen,
)
from identity_process import running_identity as _running_identity

#: Pinned so tokens from one process verify against the next (each listens on a new port).
ISSUER = "http://identity.test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'identity.db'}"
    return str(request.getfixturevalue("postgres_url"))


@contextlib.contextmanager
def running_identity(env: dict[str, str], data_dir: Path) -> Iterator[RunningIdentity]:
    """A process whose client signs its assertions for the pinned issuer."""
    with _running_identity(env, data_dir) as identity:
        identity.client = IdentityClient(identity.channel, issuer=ISSUER)
        yield identity


def _new_kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _kek_id(kek: str) -> str:
    return hashlib.sha256(base64.b64decode(kek)).hexdigest()[:16]


def _command(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m egov_identity <args>`` with the server's settings; exits by itself."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, **env, "EGOV_IDENTITY_DATA_DIR": str(data_dir),
            "EGOV_IDENTITY_GRPC_LISTEN": "127.0.0.1:0", "EGOV_IDENTITY_HTTP_LISTEN": "127.0.0.1:0"}
    return subprocess.run([sys.executable, "-m", "egov_identity", *args], env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def _verifier(identity: RunningIdentity, **jwks_options: object) -> TokenVerifier:
    """A relying party that knows only the JWKS URL of the running process."""
    return TokenVerifier(HttpJwks(identity.process.http_url + "/jwks", **jwks_options),  # type: ignore[arg-type]
                         issuer=ISSUER, audiences=[PORTAL_ID])


def _aal2_tokens(identity: RunningIdentity, username: str, secret: bytes) -> Tokens:
    return identity.client.login_and_get_tokens(
        PORTAL_ID, REDIRECT, username, PASSWORD, totp_secret=secret, scope="openid profile",
        totp_at=time.time() + 30)  # enrolment spent the current step


def test_tokens_and_totp_survive_a_kek_rotation_rewrap_and_dropping_the_old_kek(
        database_url: str, tmp_path: Path) -> None:
    admin_key = MachineKey()
    kek_a, kek_b = _new_kek(), _new_kek()
    env_a = {**base_env(tmp_path, admin_key, kek=kek_a, database_url=database_url),
             "EGOV_IDENTITY_ISSUER": ISSUER}
    with running_identity(env_a, tmp_path / "a") as identity:
        citizens = [setup_citizen(identity, admin_key, 0)]
        citizens += [setup_citizen(identity, admin_key, i, register_portal=False)
                     for i in (1, 2)]
        before = _aal2_tokens(identity, *citizens[0])
        assert _verifier(identity).verify(before.id_token).aal == 2

    # New KEK, old one as previous: everything sealed under A still opens.
    env_b = {**env_a, "EGOV_IDENTITY_KEK": kek_b, "EGOV_IDENTITY_PREVIOUS_KEKS": kek_a}
    with running_identity(env_b, tmp_path / "b") as identity:
        assert _verifier(identity).verify(before.id_token).subject
        during = _aal2_tokens(identity, *citizens[1])  # TOTP seed sealed under A
        assert _verifier(identity).verify(during.id_token).aal == 2

        # rewrap-kek beside the serving process.
        rewrap = _command(env_b, tmp_path / "rewrap", "rewrap-kek", "--batch-size", "2")
        assert rewrap.returncode == 0, rewrap.stderr
        counts = dict(re.findall(r"^(signing keys|TOTP seeds): (\d+) re-sealed", rewrap.stdout,
                                 re.MULTILINE))
        assert int(counts["signing keys"]) >= 2 and counts["TOTP seeds"] == "3"
        assert f"every sealed value is under KEK {_kek_id(kek_b)}" in rewrap.stdout
        again = _command(env_b, tmp_path / "rewrap", "rewrap-kek")
        assert again.returncode == 0
        assert re.findall(r": (\d+) re-sealed", again.stdout) == ["0", "0", "0"]
        for output in (rewrap, again):
            assert kek_a not in output.stdout + output.stderr
            assert kek_b not in output.stdout + output.stderr

    # The old KEK removed: tokens, signing and TOTP still work.
    env_b_only = {**env_a, "EGOV_IDENTITY_KEK": kek_b}
    with running_identity(env_b_only, tmp_path / "c") as identity:
        verifier = _verifier(identity)
        assert verifier.verify(before.id_token).subject
        assert verifier.verify(during.id_token).subject
        after = _aal2_tokens(identity, *citizens[2])
        assert verifier.verify(after.id_token).aal == 2
        claims = identity.client.call(identity.client.oidc.GetUserInfo,
                                      oidc_pb2.GetUserInfoRequest(access_token=after.access_token))
        assert claims.claims_json

    # A KEK that sealed nothing here: a clear refusal, no traceback, no key material.
    kek_c = _new_kek()
    wrong = _command({**env_a, "EGOV_IDENTITY_KEK": kek_c}, tmp_path / "d")
    assert wrong.returncode == 3
    assert "cannot start: KEK_UNKNOWN" in wrong.stderr
    assert _kek_id(kek_b) in wrong.stderr and _kek_id(kek_c) in wrong.stderr
    assert "Traceback" not in wrong.stderr and "InvalidTag" not in wrong.stderr
    assert kek_c not in wrong.stderr


def _poll(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")


def test_rotate_signing_key_signs_with_a_new_kid_and_retire_old_stops_old_tokens(
        database_url: str, tmp_path: Path) -> None:
    admin_key = MachineKey()
    env = {**base_env(tmp_path, admin_key, database_url=database_url),
           "EGOV_IDENTITY_ISSUER": ISSUER}
    with running_identity(env, tmp_path / "serve") as identity:
        username, _ = setup_citizen(identity, admin_key)

        def tokens() -> Tokens:
            return identity.client.login_and_get_tokens(
                PORTAL_ID, REDIRECT, username, PASSWORD, totp_secret=None,
                scope="openid profile", acr_values="")

        def kid(token: str) -> str:
            return str(jwt.get_unverified_header(token)["kid"])

        def published() -> set[str]:
            keys = httpx.get(identity.process.http_url + "/jwks").json()["keys"]
            return {k["kid"] for k in keys}

        # A relying party's JWKS cache on a clock the test moves (5-minute cache).
        now = [0.0]
        relying_party = _verifier(identity, cache_seconds=300, min_refresh_seconds=10,
                                  monotonic=lambda: now[0])
        first = tokens()
        relying_party.verify(first.id_token)

        rotated = _command(env, tmp_path / "cli", "rotate-signing-key")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = re.search(r"ES256: new signing key (\S+),", rotated.stdout)
        assert new_kid is not None and "RS256: new signing key" in rotated.stdout
        assert kid(first.id_token) in rotated.stdout  # kept published for its tokens
        _poll(lambda: kid(tokens().id_token) == new_kid[1], "the new key signs")
        second = tokens()
        assert {kid(first.id_token), new_kid[1]} <= published()
        now[0] += 11  # an unknown kid may trigger one refresh per 10 s
        relying_party.verify(second.id_token)
        relying_party.verify(first.id_token)  # old key still published

        retired = _command(env, tmp_path / "cli", "rotate-signing-key", "--retire-old",
                           "--alg", "ES256")
        assert retired.returncode == 0, retired.stderr
        newest = re.search(r"ES256: new signing key (\S+),", retired.stdout)
        assert newest is not None and "RS256" not in retired.stdout
        assert f"withdrawn from JWKS now: {kid(first.id_token)}, {new_kid[1]}" in (
            retired.stdout)
        _poll(lambda: new_kid[1] not in published(), "the old keys leave the JWKS")
        assert newest[1] in published() and kid(first.id_token) not in published()
        third = tokens()
        assert kid(third.id_token) == newest[1]

        # Until the relying party's cache expires it still holds the withdrawn keys; after the
        # refresh, tokens they signed fail, and the new one verifies.
        relying_party.verify(second.id_token)
        now[0] += 301
        for old in (first, second):
            with pytest.raises(EgovError) as info:
                relying_party.verify(old.id_token)
            assert info.value.reason == "TOKEN_KEY_UNKNOWN"
        assert relying_party.verify(third.id_token).subject
        # identity itself refuses the withdrawn key's access tokens at once.
        with pytest.raises(EgovError) as info:
            identity.client.call(identity.client.oidc.GetUserInfo,
                                 oidc_pb2.GetUserInfoRequest(access_token=second.access_token))
        assert info.value.reason == "TOKEN_KEY_UNKNOWN"
