"""Two identity processes on one PostgreSQL database behave as one service."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from egov.identity.v1 import authentication_pb2 as auth_pb
from egov.identity.v1 import oidc_pb2
from egov_clients.identity import MachineKey, pkce_pair
from egov_common.errors import Code, EgovError
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

pytestmark = pytest.mark.postgres


def test_codes_and_refresh_tokens_are_single_use_across_processes(
        postgres_url: str, tmp_path: Path) -> None:
    admin_key = MachineKey()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env_a = base_env(tmp_path / "a", admin_key, database_url=postgres_url)
    env_b = {**env_a, "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE":
             env_a["EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE"]}
    with running_identity(env_a) as a:
        # Both processes must agree on the issuer: pin it to A's URL for B too.
        env_b["EGOV_IDENTITY_ISSUER"] = a.issuer
        with running_identity(env_b) as b:
            username, secret = setup_citizen(a, admin_key)
            assert httpx.get(a.issuer + "/jwks").json() == httpx.get(
                b.process.http_url + "/jwks").json()

            # Code issued by A, redeemed on B once; a second redemption on A is refused.
            login = a.client.call(a.client.authn.Login, auth_pb.LoginRequest(
                client_id=PORTAL_ID, username=username, password=PASSWORD,
                totp_code=next_totp(secret)))
            verifier, challenge = pkce_pair()
            auth = a.client.call(a.client.oidc.Authorize, oidc_pb2.AuthorizeRequest(
                login_session_id=login.login_session_id, client_id=PORTAL_ID,
                redirect_uri=REDIRECT, scope="openid profile", code_challenge=challenge,
                code_challenge_method="S256", acr_values="2"))
            tokens = b.client.redeem_code(PORTAL_ID, auth.code, REDIRECT, verifier)
            with pytest.raises(EgovError) as info:
                a.client.redeem_code(PORTAL_ID, auth.code, REDIRECT, verifier)
            assert (info.value.code, info.value.reason) == (Code.INVALID_ARGUMENT,
                                                            "INVALID_GRANT")

            # The replayed code revoked what it had produced, on both processes.
            with pytest.raises(EgovError):
                b.client.refresh(PORTAL_ID, tokens.refresh_token)

            # Refresh rotated on A; the old token replayed on B is refused (and revokes).
            tokens = b.client.login_and_get_tokens(PORTAL_ID, REDIRECT, username, PASSWORD,
                                                   totp_secret=None, scope="openid profile",
                                                   acr_values="")
            rotated = a.client.refresh(PORTAL_ID, tokens.refresh_token)

            def userinfo(server: RunningIdentity, token: str) -> dict[str, str]:
                return dict(json.loads(server.client.call(
                    server.client.oidc.GetUserInfo,
                    oidc_pb2.GetUserInfoRequest(access_token=token)).claims_json))

            # Each accepts the other's tokens.
            for server, token in ((a, tokens.access_token), (b, rotated.access_token)):
                assert userinfo(server, token)["given_name"]
            with pytest.raises(EgovError) as info:
                b.client.refresh(PORTAL_ID, tokens.refresh_token)
            assert info.value.reason == "INVALID_GRANT"
            with pytest.raises(EgovError):
                a.client.refresh(PORTAL_ID, rotated.refresh_token)
            # The reuse revoked the family's access tokens too, on both processes.
            for server, token in ((a, rotated.access_token), (b, tokens.access_token)):
                with pytest.raises(EgovError) as info:
                    userinfo(server, token)
                assert info.value.reason == "TOKEN_REVOKED"
