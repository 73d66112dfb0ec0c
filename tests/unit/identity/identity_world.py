"""Helpers for identity unit tests: an in-process IdentityService on a fresh SQLite database
with a fixed clock (fixtures re-exported by ``conftest.py``)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.clock import FixedClock
from egov_common.db import make_engine, upgrade_to_head
from egov_identity.adapters.population import SyntheticPopulation
from egov_identity.domain import model as m
from egov_identity.domain.authentication import ThrottlePolicy, totp_code
from egov_identity.domain.proofing import IdCardChipEvidence, InPersonEvidence, PersonAttributes
from egov_identity.domain.service import IdentityConfig, IdentityService
from jwt.algorithms import ECAlgorithm

ISSUER = "https://id.test"


@dataclass
class World:
    service: IdentityService
    clock: FixedClock
    population: SyntheticPopulation

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


def make_service(url: str, clock: FixedClock, population: SyntheticPopulation,
                 **overrides: Any) -> IdentityService:
    throttle = ThrottlePolicy(max_failures=3, client_max_failures=5)
    config = IdentityConfig(**{"issuer": ISSUER, "kek": b"k" * 32, "argon2_time_cost": 1,
                               "argon2_memory_kib": 8, "throttle": throttle, **overrides})
    return IdentityService(config, make_engine(url), clock, registry=population,
                           companies=population, kyc=population)


@pytest.fixture
def population() -> SyntheticPopulation:
    return SyntheticPopulation(seed=7, size=20)


@pytest.fixture
def world(sqlite_url: str, population: SyntheticPopulation) -> World:
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    return World(make_service(sqlite_url, clock, population), clock, population)


def chip_for(person: Any) -> IdCardChipEvidence:
    return IdCardChipEvidence(
        national_id=person.identifier.split(":", 1)[1],
        attributes=PersonAttributes(person.given_name_th, person.family_name_th,
                                    person.given_name_en, person.family_name_en,
                                    person.birth_date),
        laser_code=person.card_laser_code, expiry_date=person.document_expiry)


def in_person_for(person: Any) -> InPersonEvidence:
    return InPersonEvidence("officer-7", "district-1001",
                            PersonAttributes(given_name_en=person.given_name_en,
                                             birth_date=person.birth_date), True)


def proof_person(world: World, index: int = 0, ial: str = "2.3") -> tuple[Any, str, str]:
    """Proofs population person ``index`` at ``ial``; returns (source person, person_id, code)."""
    from egov_pki.identifiers import parse_identifier
    src = [p for p in world.population.people if p.identifier.startswith("TH-PID")][index]
    s = world.service
    session = s.start_proofing(parse_identifier(src.identifier), ial)
    s.submit_evidence(session.session_id, chip_for(src))
    s.submit_evidence(session.session_id, in_person_for(src))
    done = s.complete_proofing(session.session_id)
    return src, done.person_id, done.enrolment_code


PASSWORD = "lantern orbit velvet canyon"  # passes the password policy (not a famous one)


def enrol_login(world: World, index: int = 0, *, client_id: str = "portal"
                ) -> tuple[Any, str, bytes]:
    """Proof + password + TOTP; returns (source person, username, totp secret)."""
    src, person_id, code = proof_person(world, index)
    s = world.service
    username = s.set_password(person_id, PASSWORD, enrolment_code=code,
                              username=f"user{index}")
    session = s.login(client_id, username, PASSWORD)
    secret = totp_secret(s.enrol_totp(session.login_session_id))
    s.confirm_totp(session.login_session_id, current_totp(world, secret))
    world.advance(30)
    return src, username, secret


def totp_secret(otpauth_uri: str) -> bytes:
    """The seed of an ``otpauth://`` URI, as an authenticator app reads it."""
    import base64
    import urllib.parse
    secret_b32 = urllib.parse.parse_qs(urllib.parse.urlsplit(otpauth_uri).query)["secret"][0]
    return base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))


def current_totp(world: World, secret: bytes) -> str:
    return totp_code(secret, int(world.clock.now().timestamp() // 30))


class MachineKey:
    """A client's private_key_jwt key pair."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", alg="ES256", use="sig")
        self.jwks_json = json.dumps({"keys": [jwk]})

    def assertion(self, client_id: str, audience: str = ISSUER + "/token",
                  now: Callable[[], float] = time.time) -> str:
        t = int(now())
        return jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "iat": t,
                           "exp": t + 60, "jti": uuid.uuid4().hex}, self.key,
                          algorithm="ES256", headers={"kid": "k1"})


PORTAL_SCOPES = ("openid", "profile", "identifier", "verified_claims", "keys:sign")


def register_portal(world: World, client_id: str = "portal",
                    scopes: tuple[str, ...] = PORTAL_SCOPES, **kw: Any) -> m.Client:
    return world.service.register_client(m.Client(
        client_id=client_id, client_name="Citizen Portal",
        redirect_uris=("https://portal.test/cb",),
        grant_types=(m.GRANT_AUTHORIZATION_CODE, m.GRANT_REFRESH_TOKEN),
        scopes=scopes, auth_method="none", **kw))


def register_machine(world: World, key: MachineKey, client_id: str = "agency-app",
                     grant_types: tuple[str, ...] = (m.GRANT_CLIENT_CREDENTIALS,),
                     scopes: tuple[str, ...] = ("registry:issue", "keys:seal"),
                     agency: str = "", **kw: Any) -> m.Client:
    return world.service.register_client(m.Client(
        client_id=client_id, client_name="Agency back office", redirect_uris=(),
        grant_types=grant_types, scopes=scopes, auth_method="private_key_jwt",
        jwks_json=key.jwks_json, agency=agency, **kw))


