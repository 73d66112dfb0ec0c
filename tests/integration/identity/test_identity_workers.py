"""EGOV_IDENTITY_PROCESSES=2: two forked workers on one port act as one identity service.

Which worker serves a connection is the kernel's choice (SO_REUSEPORT); the tests find one
connection to each by sending a W3C trace id and reading which worker logged it.
"""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from egov.identity.v1 import authentication_pb2 as auth_pb
from egov.identity.v1 import oidc_pb2
from egov.identity.v1 import oidc_pb2_grpc as oidc_grpc
from egov_clients.identity import CLIENT_ASSERTION_TYPE, IdentityClient, MachineKey, pkce_pair
from egov_common.errors import Code, EgovError
from egov_testing.processes import ServiceProcess
from identity_process import (
    ADMIN_ID,
    PASSWORD,
    PORTAL_ID,
    REDIRECT,
    base_env,
    running_identity,
    setup_citizen,
)

ATTEMPTS = 100  # new connections tried to reach both workers


def _own_connection(address: str) -> grpc.Channel:
    # A TCP connection of its own (grpc shares one per address within a process otherwise).
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def _log_lines(process: ServiceProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in process.log_path.read_text().splitlines()
            if line.startswith("{")]


def _worker_of(process: ServiceProcess, channel: grpc.Channel) -> int:
    """The worker serving ``channel``: the one whose request log line has our trace id."""
    trace_id = secrets.token_hex(16)
    oidc_grpc.OidcServiceStub(channel).GetJwks(
        oidc_pb2.GetJwksRequest(), timeout=10,
        metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in _log_lines(process):
            if line.get("trace_id") == trace_id and isinstance(line.get("worker"), int):
                return int(line["worker"])  # type: ignore[call-overload]
        time.sleep(0.05)
    raise AssertionError(f"no log line with trace id {trace_id}")


def _client_per_worker(process: ServiceProcess, issuer: str) -> list[IdentityClient]:
    found: dict[int, grpc.Channel] = {}
    for _ in range(ATTEMPTS):
        channel = _own_connection(process.grpc_address)
        worker = _worker_of(process, channel)
        if worker in found:
            channel.close()
            continue
        found[worker] = channel
        if len(found) == 2:
            return [IdentityClient(found[n], issuer=issuer) for n in sorted(found)]
    pytest.fail(f"{ATTEMPTS} connections reached only worker(s) {sorted(found)}")


def _client_credentials(client: IdentityClient, assertion: str) -> str:
    response = client.call(client.oidc.Token, oidc_pb2.TokenRequest(
        grant_type="client_credentials", client_id=ADMIN_ID, client_assertion=assertion,
        client_assertion_type=CLIENT_ASSERTION_TYPE, scope="identity:admin"))
    return str(response.access_token)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_two_workers_act_as_one_service(backend: str, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    admin_key = MachineKey()
    database_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    env = {**base_env(tmp_path, admin_key, database_url=database_url),
           "EGOV_IDENTITY_PROCESSES": "2"}
    with running_identity(env, data_dir=tmp_path) as identity:
        a, b = _client_per_worker(identity.process, identity.issuer)

        # Both workers publish the same keys, over gRPC and over HTTP.
        jwks = json.loads(a.call(a.oidc.GetJwks, oidc_pb2.GetJwksRequest()).jwks_json)
        assert jwks["keys"]
        assert json.loads(b.call(b.oidc.GetJwks, oidc_pb2.GetJwksRequest()).jwks_json) == jwks
        for _ in range(6):  # a new connection each time, so both workers answer some
            assert httpx.get(identity.issuer + "/jwks").json() == jwks

        username, _ = setup_citizen(identity, admin_key)

        # A client assertion is single use across workers.
        assertion = admin_key.assertion(ADMIN_ID, identity.issuer + "/token")
        _client_credentials(a, assertion)
        with pytest.raises(EgovError) as info:
            _client_credentials(b, assertion)
        assert (info.value.code, info.value.reason) == (Code.UNAUTHENTICATED, "INVALID_CLIENT")

        # A code minted on worker 0 is redeemed on worker 1, then refused on worker 0; the
        # replay revokes the refresh token it was exchanged for, on both.
        login = a.call(a.authn.Login, auth_pb.LoginRequest(
            client_id=PORTAL_ID, username=username, password=PASSWORD))
        verifier, challenge = pkce_pair()
        code = a.call(a.oidc.Authorize, oidc_pb2.AuthorizeRequest(
            login_session_id=login.login_session_id, client_id=PORTAL_ID,
            redirect_uri=REDIRECT, scope="openid profile", code_challenge=challenge,
            code_challenge_method="S256")).code
        tokens = b.redeem_code(PORTAL_ID, code, REDIRECT, verifier)
        with pytest.raises(EgovError) as info:
            a.redeem_code(PORTAL_ID, code, REDIRECT, verifier)
        assert (info.value.code, info.value.reason) == (Code.INVALID_ARGUMENT, "INVALID_GRANT")
        with pytest.raises(EgovError) as info:
            b.refresh(PORTAL_ID, tokens.refresh_token)
        assert info.value.reason == "INVALID_GRANT"

        # A refresh token rotated on worker 0 and replayed on worker 1 is refused, and the
        # replay revokes its successor too.
        tokens = a.login_and_get_tokens(PORTAL_ID, REDIRECT, username, PASSWORD,
                                        totp_secret=None, scope="openid profile",
                                        acr_values="")
        rotated = a.refresh(PORTAL_ID, tokens.refresh_token)
        claims = json.loads(b.call(b.oidc.GetUserInfo, oidc_pb2.GetUserInfoRequest(
            access_token=rotated.access_token)).claims_json)  # worker 1 accepts 0's token
        assert claims["given_name"]
        with pytest.raises(EgovError) as info:
            b.refresh(PORTAL_ID, tokens.refresh_token)
        assert info.value.reason == "INVALID_GRANT"
        with pytest.raises(EgovError):
            a.refresh(PORTAL_ID, rotated.refresh_token)

        # Concurrent grants on both workers, each thread on its own connection: every worker
        # uses database connections of its own (a shared one would garble the protocol).
        chains = [a.login_and_get_tokens(PORTAL_ID, REDIRECT, username, PASSWORD,
                                         totp_secret=None, scope="openid profile",
                                         acr_values="").refresh_token for _ in range(8)]

        def grants(slot: int) -> int:
            channel = _own_connection(identity.process.grpc_address)
            with channel:
                client = IdentityClient(channel, issuer=identity.issuer)
                token = chains[slot]
                for _ in range(10):
                    _client_credentials(client, admin_key.assertion(
                        ADMIN_ID, identity.issuer + "/token"))
                    token = client.refresh(PORTAL_ID, token).refresh_token
            return 20

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(grants, range(8))) == 160

        assert identity.process.stop() == 0
    lines = _log_lines(identity.process)
    assert {line.get("worker") for line in lines if line.get("message") == "serving"} == {0, 1}
    # The purge runs after the fork, in one worker only.
    purges = [line for line in lines if str(line.get("message", "")).startswith(
        "purging expired records every")]
    assert [line.get("worker") for line in purges] == [0]
    assert not [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]
