"""PyJWT's PyJWKClient (unmodified) verifies ID tokens before and after a signing-key rotation,
fetching the identity service's JWKS over real HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
import pytest
from egov_common.clock import FixedClock
from egov_common.db import make_engine, upgrade_to_head
from egov_common.server import HttpServer
from egov_identity.adapters.population import SyntheticPopulation
from egov_identity.domain.service import IdentityConfig, IdentityService
from egov_identity.http import build_http_app
from egov_testing.processes import free_port


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    upgrade_to_head(url, "egov_identity.storage.migrations")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    # Start slightly in the past so that after the publish-ahead period the clock is ~now.
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=150))
    population = SyntheticPopulation(seed=7, size=10)
    service = IdentityService(
        IdentityConfig(issuer=issuer, kek=b"r" * 32, key_rotation_seconds=3600,
                       key_publish_ahead_seconds=120, argon2_memory_kib=8, argon2_time_cost=1),
        make_engine(url), clock, registry=population, companies=population, kyc=population)
    server = HttpServer(build_http_app(service), f"127.0.0.1:{port}", grace_period=1)
    server.start()
    try:
        yield service, clock, issuer
    finally:
        server.stop(5)
        service.engine.dispose()


def _id_token(service: IdentityService) -> str:
    now = int(service.now())
    return service.keyring.sign({"iss": service.config.issuer, "sub": "p-1", "aud": "portal",
                                 "iat": now, "exp": now + 300})


def test_pyjwkclient_verifies_tokens_before_and_after_rotation(served) -> None:  # type: ignore[no-untyped-def]
    service, clock, issuer = served
    early = jwt.PyJWKClient(f"{issuer}/jwks", cache_keys=True, lifespan=300)
    before = _id_token(service)
    key = early.get_signing_key_from_jwt(before)
    assert jwt.decode(before, key.key, algorithms=["ES256"], audience="portal")["sub"] == "p-1"

    new_kid = service.keyring.rotate_now()
    assert jwt.get_unverified_header(_id_token(service))["kid"] != new_kid  # not signing yet
    # A relying party whose cache refreshes during the publish-ahead window (PyJWT caches for
    # 5 minutes; the default window is a day) already holds the next key when it starts signing.
    cached = jwt.PyJWKClient(f"{issuer}/jwks", cache_keys=True, lifespan=300)
    assert new_kid in {k.key_id for k in cached.get_signing_keys()}

    def no_more_fetches() -> None:
        raise AssertionError("the next key should already be cached")

    cached.fetch_data = no_more_fetches  # type: ignore[method-assign]
    clock.advance(121)
    after = _id_token(service)
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    for token in (after, before):  # the old key stays published while its tokens live
        signing_key = cached.get_signing_key_from_jwt(token)
        assert jwt.decode(token, signing_key.key, algorithms=["ES256"], audience="portal",
                          leeway=200)["iss"] == issuer
