"""``python -m egov_identity``: migrate the database, build the service, serve gRPC + OIDC HTTP.

``python -m egov_identity migrate`` only brings the database to the latest schema and exits (the
migration Job that runs before a rollout).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import sys
import threading

from egov_common.clock import SystemClock
from egov_common.db import make_engine, upgrade_to_head
from egov_common.errors import AlreadyExists
from egov_common.server import serve
from egov_common.settings import load_settings_or_exit
from egov_pki.tokens import BearerTokenVerifier, TokenVerifier

from egov_identity.adapters.population import SyntheticPopulation
from egov_identity.domain import model as m
from egov_identity.domain.authentication import ThrottlePolicy
from egov_identity.domain.levels import AssuranceLevels
from egov_identity.domain.service import IdentityConfig, IdentityService
from egov_identity.http import build_http_app
from egov_identity.servicer import grpc_services
from egov_identity.settings import IdentitySettings

log = logging.getLogger("egov_identity")


MIGRATIONS = "egov_identity.storage.migrations"


def build_service(settings: IdentitySettings) -> IdentityService:
    upgrade_to_head(settings.database_url, MIGRATIONS)
    kek = settings.kek_bytes()
    config = IdentityConfig(
        issuer=settings.issuer_url(), kek=kek,
        ial_levels=AssuranceLevels.parse(settings.ial_levels),
        pairwise_salt=base64.b64decode(settings.pairwise_salt) if settings.pairwise_salt
        else b"",
        access_token_seconds=settings.access_token_seconds,
        id_token_seconds=settings.id_token_seconds,
        refresh_token_seconds=settings.refresh_token_seconds,
        code_seconds=settings.code_seconds, login_session_seconds=settings.login_session_seconds,
        proofing_seconds=settings.proofing_seconds,
        ciba_expires_seconds=settings.ciba_expires_seconds,
        ciba_interval_seconds=settings.ciba_interval_seconds,
        key_rotation_seconds=settings.key_rotation_seconds,
        key_publish_ahead_seconds=settings.key_publish_ahead_seconds,
        throttle=ThrottlePolicy(settings.max_failures, settings.client_max_failures,
                                settings.failure_window_seconds, settings.lockout_seconds),
        argon2_time_cost=settings.argon2_time_cost, argon2_memory_kib=settings.argon2_memory_kib)
    population = SyntheticPopulation(settings.population_seed, settings.population_size)
    service = IdentityService(config, make_engine(settings.database_url), SystemClock(),
                              registry=population, companies=population, kyc=population)
    service.keyring.ensure(force=True)
    if settings.bootstrap_clients_file is not None:
        for spec in json.loads(settings.bootstrap_clients_file.read_text()):
            with contextlib.suppress(AlreadyExists):
                service.register_client(m.Client(
                    client_id=spec["client_id"], client_name=spec.get("client_name", ""),
                    redirect_uris=tuple(spec.get("redirect_uris", ())),
                    grant_types=tuple(spec.get("grant_types", ())),
                    scopes=tuple(spec.get("scopes", ())),
                    auth_method=spec.get("token_endpoint_auth_method", "none"),
                    jwks_json=spec.get("jwks_json", ""),
                    subject_type=m.SubjectType(spec.get("subject_type", "public")),
                    sector_identifier=spec.get("sector_identifier", ""),
                    agency=spec.get("agency", "")))
    return service


def _purge_periodically(service: IdentityService, stop: threading.Event) -> None:
    while not stop.wait(600):
        try:
            removed = service.purge_expired()
            log.info("expired records purged", extra={"rows": removed})
        except Exception:  # keep serving; the next round retries
            log.exception("purging expired records failed")


def main(argv: list[str]) -> int:
    settings = load_settings_or_exit(IdentitySettings, "IDENTITY")
    if argv == ["migrate"]:
        upgrade_to_head(settings.database_url, MIGRATIONS)
        print("identity database is at the latest schema")
        return 0
    if argv:
        print("usage: python -m egov_identity [migrate]", file=sys.stderr)
        return 2
    service = build_service(settings)
    stop = threading.Event()
    threading.Thread(target=_purge_periodically, args=(service, stop), name="purge",
                     daemon=True).start()

    def shutdown() -> None:
        stop.set()
        service.engine.dispose()

    verifier = TokenVerifier(service.keyring, issuer=service.config.issuer,
                             audiences=["urn:egov:identity", service.config.issuer])
    serve(settings, grpc_services(service), http_app=build_http_app(service),
          token_verifier=BearerTokenVerifier(verifier),
          on_shutdown=shutdown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
