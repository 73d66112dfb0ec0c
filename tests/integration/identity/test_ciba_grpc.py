"""CIBA poll mode end to end: a kiosk asks over HTTP, the citizen's device approves over gRPC,
the kiosk polls the token endpoint."""

from __future__ import annotations

import time

import httpx
from egov.identity.v1 import authentication_pb2 as auth_pb
from egov_clients.identity import (
    CLIENT_ASSERTION_TYPE,
    GRANT_CIBA,
    DeviceKey,
    MachineKey,
    decide,
    pending_approvals,
    register_device,
)
from egov_pki.tokens import HttpJwks, TokenVerifier
from identity_process import (
    ADMIN_ID,
    PASSWORD,
    PORTAL_ID,
    RunningIdentity,
    next_totp,
    setup_citizen,
)


def test_device_approval_gives_the_kiosk_aal2_tokens(identity: RunningIdentity,
                                                      admin_key: MachineKey) -> None:
    c = identity.client
    username, secret = setup_citizen(identity, admin_key, index=9)
    login = c.call(c.authn.Login, auth_pb.LoginRequest(
        client_id=PORTAL_ID, username=username, password=PASSWORD, totp_code=next_totp(secret)))
    device = DeviceKey()
    register_device(c, login.login_session_id, device)

    kiosk = MachineKey()
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    c.register_client(admin, client_id="kiosk", client_name="District kiosk",
                      grant_types=[GRANT_CIBA], scopes=["openid", "profile"], key=kiosk)
    token_url = identity.issuer + "/token"
    started = httpx.post(identity.issuer + "/bc-authorize", data={
        "client_id": "kiosk", "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": kiosk.assertion("kiosk", token_url), "login_hint": username,
        "binding_message": "Kiosk 7", "scope": "openid profile"}).json()

    def poll() -> httpx.Response:
        return httpx.post(token_url, data={
            "grant_type": GRANT_CIBA, "client_id": "kiosk", "auth_req_id": started["auth_req_id"],
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": kiosk.assertion("kiosk", token_url)})

    first = poll()
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")

    [request] = pending_approvals(c, device)
    assert request.binding_message == "Kiosk 7"
    decide(c, device, started["auth_req_id"], True)
    time.sleep(started["interval"])  # the protocol's polling interval (1 s in this process)
    response = poll()
    assert response.status_code == 200, response.text
    verified = TokenVerifier(HttpJwks(identity.issuer + "/jwks"), issuer=identity.issuer,
                             audiences=["kiosk"]).verify(response.json()["id_token"])
    assert verified.aal == 2
    assert verified.amr == ("hwk", "user")
