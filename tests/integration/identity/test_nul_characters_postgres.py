"""A NUL character in any text of a request is the caller's mistake, said as one: PostgreSQL
stores no NUL in a text column, so without the check every such request was INTERNAL there
(and was stored as sent on SQLite)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from egov.identity.v1 import authentication_pb2 as auth_pb
from egov.identity.v1 import oidc_pb2, proofing_pb2
from egov_clients.identity import MachineKey
from egov_common.errors import Code, EgovError
from identity_process import ADMIN_ID, PORTAL_ID, REDIRECT, base_env, running_identity

pytestmark = pytest.mark.postgres

ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_a_nul_character_is_invalid_argument_over_grpc_and_invalid_request_over_http(
        postgres_url: str, tmp_path: Path) -> None:
    admin_key = MachineKey()
    with running_identity(base_env(tmp_path, admin_key, database_url=postgres_url)) as running:
        c = running.client
        admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:proofing")
        calls = [
            (c.authn.Login, auth_pb.LoginRequest(client_id=PORTAL_ID, username="some\x00one",
                                                 password="lantern orbit velvet canyon"),
             None, "username"),
            (c.oidc.Token, oidc_pb2.TokenRequest(grant_type="refresh_token",
                                                 client_id="por\x00tal", refresh_token="x"),
             None, "client_id"),
            (c.proofing.GetProofing, proofing_pb2.GetProofingRequest(session_id="prf-\x00"),
             admin, "session_id"),
        ]
        for method, request, token, field in calls:
            with pytest.raises(EgovError) as info:
                c.call(method, request, token or "")
            assert (info.value.code, info.value.reason) == (Code.INVALID_ARGUMENT,
                                                            "TEXT_INVALID")
            assert [v.field for v in info.value.field_violations] == [field]

        token = httpx.post(running.issuer + "/token", data={
            "grant_type": "refresh_token", "client_id": "por\x00tal", "refresh_token": "x"})
        assert (token.status_code, token.json()["error"]) == (400, "invalid_request")
        page = httpx.get(running.issuer + "/authorize", params={
            "response_type": "code", "client_id": "por\x00tal", "redirect_uri": REDIRECT})
        assert page.status_code == 400

        # Inside a client assertion, where no form or message check sees it: the unverified
        # iss that names the client, and the jti of an assertion the client really signed.
        now = int(time.time())
        unsigned_iss = jwt.encode({"iss": "agency\x00app"}, "k" * 32, algorithm="HS256")
        signed_jti = jwt.encode({"iss": ADMIN_ID, "sub": ADMIN_ID, "aud": running.issuer,
                                 "iat": now, "exp": now + 60, "jti": "j\x00"},
                                admin_key.private_key, algorithm="ES256", headers={"kid": "k1"})
        for form in ({"client_assertion": unsigned_iss},
                     {"client_id": ADMIN_ID, "client_assertion": signed_jti}):
            r = httpx.post(running.issuer + "/token", data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION, **form})
            assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
        assert "DataError" not in running.process.log_path.read_text()
