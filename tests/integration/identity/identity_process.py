"""Helpers for identity integration tests: start real ``python -m egov_identity`` processes."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from egov_clients.identity import IdentityClient, MachineKey, totp_now
from egov_identity.adapters.population import SyntheticPopulation
from egov_testing.processes import ServiceProcess, start_service

POPULATION = SyntheticPopulation(seed=7, size=20)
ADMIN_ID = "identity-admin"
PORTAL_ID = "portal"
#: A public portal registered (from the bootstrap file) for RS256 ID tokens.
RS256_PORTAL_ID = "portal-rs256"
REDIRECT = "http://127.0.0.1/cb"
PASSWORD = "lantern orbit velvet canyon"  # passes the password policy (not a famous one)


@dataclass
class RunningIdentity:
    process: ServiceProcess
    client: IdentityClient
    channel: grpc.Channel

    @property
    def issuer(self) -> str:
        return self.process.http_url


def base_env(tmp: Path, admin_key: MachineKey, *, kek: str | None = None,
             database_url: str | None = None, log_level: str = "INFO") -> dict[str, str]:
    bootstrap = tmp / "bootstrap-clients.json"
    bootstrap.write_text(json.dumps([{
        "client_id": ADMIN_ID, "client_name": "Identity admin",
        "grant_types": ["client_credentials"],
        "scopes": ["identity:admin", "identity:proofing"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks_json": admin_key.jwks_json}, {
        # Asks for RS256 ID tokens (RegisterClient carries the same field).
        "client_id": RS256_PORTAL_ID, "client_name": "Portal that verifies RS256",
        "grant_types": ["authorization_code"], "scopes": ["openid", "profile"],
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
        "id_token_signed_response_alg": "RS256"}]))
    env = {
        "EGOV_IDENTITY_KEK": kek or base64.b64encode(secrets.token_bytes(32)).decode(),
        "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE": str(bootstrap),
        "EGOV_IDENTITY_POPULATION_SEED": "7",
        "EGOV_IDENTITY_POPULATION_SIZE": "20",
        "EGOV_IDENTITY_ARGON2_TIME_COST": "1",
        "EGOV_IDENTITY_ARGON2_MEMORY_KIB": "1024",
        "EGOV_IDENTITY_LOG_LEVEL": log_level,
        "EGOV_IDENTITY_CIBA_INTERVAL_SECONDS": "1",
    }
    if database_url:
        env["EGOV_IDENTITY_DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def running_identity(env: dict[str, str], data_dir: Path | None = None
                     ) -> Iterator[RunningIdentity]:
    with start_service("egov_identity", env=env, data_dir=data_dir) as process:
        channel = grpc.insecure_channel(process.grpc_address)
        try:
            yield RunningIdentity(process, IdentityClient(channel, issuer=process.http_url),
                                  channel)
        finally:
            channel.close()


def next_totp(secret: bytes) -> str:
    """The code of the NEXT time step: accepted (one step of drift is allowed) even when the
    current step's code was just spent confirming enrolment (each step counts once)."""
    return totp_now(secret, time.time() + 30)


def thai_citizens() -> list:  # type: ignore[type-arg]
    return [p for p in POPULATION.people if p.identifier.startswith("TH-PID")]


def setup_citizen(identity: RunningIdentity, admin_key: MachineKey, index: int = 0,
                  *, register_portal: bool = True) -> tuple[str, bytes]:
    """Register the portal (once), proof citizen ``index`` at IAL 2.3 and enrol password+TOTP.
    Returns (username, totp secret)."""
    c = identity.client
    admin = c.client_credentials_token(ADMIN_ID, admin_key, "identity:admin identity:proofing")
    if register_portal:
        c.register_client(admin, client_id=PORTAL_ID, client_name="Citizen Portal",
                          grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "identifier", "verified_claims",
                                  "keys:sign", "identity:representation"],
                          redirect_uris=[REDIRECT])
    citizen = thai_citizens()[index]
    person_id, code = c.proof_citizen(admin, citizen, target_ial="2.3")
    username = f"citizen{index}"
    secret = c.enrol_password_and_totp(person_id, code, username, PASSWORD, client_id=PORTAL_ID)
    return username, secret
