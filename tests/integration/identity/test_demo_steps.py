"""The demo's identity steps (egov_clients.identity) run against a real process."""

from __future__ import annotations

from pathlib import Path

from egov_clients.identity import (
    MachineKey,
    demo_agency_machine_client,
    demo_citizen_at_ial_2_3,
    write_bootstrap_clients,
)
from egov_pki.tokens import HttpJwks, TokenVerifier
from identity_process import running_identity, thai_citizens


def test_demo_citizen_and_agency_steps(tmp_path: Path) -> None:
    admin_key = MachineKey()
    write_bootstrap_clients(str(tmp_path / "clients.json"), "demo-admin", admin_key)
    env = {"EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE": str(tmp_path / "clients.json"),
           "EGOV_IDENTITY_POPULATION_SEED": "7", "EGOV_IDENTITY_POPULATION_SIZE": "20",
           "EGOV_IDENTITY_ARGON2_TIME_COST": "1", "EGOV_IDENTITY_ARGON2_MEMORY_KIB": "1024"}
    with running_identity(env) as identity:
        citizen = thai_citizens()[3]
        demo = demo_citizen_at_ial_2_3(
            identity.client, admin_client_id="demo-admin", admin_key=admin_key,
            citizen=citizen, portal_client_id="citizen-portal",
            redirect_uri="http://127.0.0.1:8080/cb", username="somchai",
            password="lantern orbit velvet canyon")
        jwks = HttpJwks(identity.issuer + "/jwks")
        id_token = TokenVerifier(jwks, issuer=identity.issuer,
                                 audiences=["citizen-portal"]).verify(demo.tokens.id_token)
        assert (id_token.aal, id_token.ial) == (2, "2.3")
        access = TokenVerifier(jwks, issuer=identity.issuer, audiences=["urn:egov:keys"],
                               token_types={"at+jwt"}).verify(demo.tokens.access_token)
        assert access.identifier == citizen.identifier
        assert "keys:sign" in access.scopes

        _key, token = demo_agency_machine_client(
            identity.client, admin_client_id="demo-admin", admin_key=admin_key,
            client_id="dbd-backoffice", agency="TH-JUR:0994000165510")
        seal = TokenVerifier(jwks, issuer=identity.issuer,
                             audiences=["urn:egov:registry"]).verify(token)
        assert seal.agency == "TH-JUR:0994000165510"
        assert seal.scopes == {"registry:issue", "keys:seal"}
        assert set(seal.audience) == {"urn:egov:registry", "urn:egov:keys"}
