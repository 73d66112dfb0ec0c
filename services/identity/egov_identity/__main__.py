"""``python -m egov_identity``: migrate the database, build the service, serve gRPC + OIDC HTTP.

Subcommands, with the same settings as the server:

- ``migrate``: only bring the database to the latest schema and exit (the migration Job that runs
  before a rollout).
- ``rewrap-kek``: re-seal every signing key, TOTP seed and service secret under the current KEK
  (``EGOV_IDENTITY_KEK``), opening them with it or with ``EGOV_IDENTITY_PREVIOUS_KEKS``; short
  transactions, safe beside serving replicas, idempotent. Exit 1 naming each value no KEK opens.
- ``rotate-signing-key [--retire-old] [--alg ES256|RS256]``: a new signing key signs from now on
  and is published in JWKS; ``--retire-old`` withdraws the old keys from JWKS at once (tokens
  they signed stop verifying), otherwise they stay until those tokens expire.

Exit status: 0 done, 1 some values could not be re-sealed, 2 usage or configuration error,
3 cannot start (a sealed value under a KEK not given, a database that cannot be read).

Serving with ``EGOV_IDENTITY_PROCESSES=N`` (N > 1), egov_common forks N workers on the same gRPC
and HTTP ports. Everything is prepared once in the parent (migrations, the start-up KEK check,
signing keys, bootstrap clients); then its pooled database connections are closed, so every
worker opens its own, and the periodic purge starts in worker 0 only, after the fork. What
must be single-use (codes, refresh tokens, assertion ``jti``s) or shared (signing keys,
lock-outs) is decided in the database, so the workers, like replicas, act as one service.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
import threading

from egov_common.auth import Caller
from egov_common.auth import TokenVerifier as AuthTokenVerifier
from egov_common.clock import SystemClock
from egov_common.db import make_engine, upgrade_to_head
from egov_common.errors import AlreadyExists, EgovError
from egov_common.logging import setup_logging
from egov_common.server import serve
from egov_common.settings import SettingsError, load_settings_or_exit
from egov_pki.tokens import ACCESS_TOKEN_TYPE, BearerTokenVerifier, TokenVerifier

from egov_identity.adapters.population import SyntheticPopulation
from egov_identity.domain import model as m
from egov_identity.domain.authentication import ThrottlePolicy
from egov_identity.domain.kek_rotation import rewrap_sealed_values
from egov_identity.domain.keyring import ALGORITHMS, DEFAULT_ID_TOKEN_ALGORITHM
from egov_identity.domain.secrets_box import SecretBox
from egov_identity.domain.service import IdentityConfig, IdentityService
from egov_identity.http import build_http_app
from egov_identity.servicer import grpc_services
from egov_identity.settings import IdentitySettings

log = logging.getLogger("egov_identity")


MIGRATIONS = "egov_identity.storage.migrations"


def identity_service(settings: IdentitySettings) -> IdentityService:
    """The service on the settings' database (migrated to head), KEKs checked: raises
    ``SettingsError`` for a malformed setting and ``EgovError`` (``KEK_UNKNOWN``, ...) when a
    sealed value does not open with the KEKs given. Registers nothing, creates no key."""
    settings.check_consistency()
    config = IdentityConfig(
        issuer=settings.issuer_url(), kek=settings.kek_bytes(),
        previous_keks=settings.previous_kek_bytes(),
        ial_levels=settings.ial_level_names(),
        password_blocklist=settings.password_blocklist(),
        pairwise_salt=settings.pairwise_salt_bytes(),
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
    upgrade_to_head(settings.database_url, MIGRATIONS)
    population = SyntheticPopulation(settings.population_seed, settings.population_size)
    service = IdentityService(config, make_engine(settings.database_url), SystemClock(),
                              registry=population, companies=population, kyc=population)
    try:
        service.check_sealed_values()
    except BaseException:
        service.engine.dispose()
        raise
    return service


def build_service(settings: IdentitySettings) -> IdentityService:
    """:func:`identity_service`, plus the signing keys that are due and the bootstrap clients."""
    clients = bootstrap_clients(settings)
    service = identity_service(settings)
    service.keyring.ensure(force=True)
    for client in clients:
        with contextlib.suppress(AlreadyExists):
            service.register_client(client)
    return service


def bootstrap_clients(settings: IdentitySettings) -> list[m.Client]:
    """The clients of ``BOOTSTRAP_CLIENTS_FILE``: a JSON list of objects with the fields of
    egov.identity.v1.Client, plus ``id_token_signed_response_alg`` (ES256 or RS256), which
    RegisterClient cannot carry yet. Raises SettingsError naming the file and the entry."""
    path = settings.bootstrap_clients_file
    if path is None:
        return []
    variable = "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE"
    try:
        specs = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(variable, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SettingsError(variable, f"is not JSON: {exc}") from None
    if not isinstance(specs, list):
        raise SettingsError(variable, "must be a JSON list of client objects")
    clients = []
    for i, spec in enumerate(specs, 1):
        try:
            clients.append(m.Client(
                client_id=spec["client_id"], client_name=spec.get("client_name", ""),
                redirect_uris=tuple(spec.get("redirect_uris", ())),
                grant_types=tuple(spec.get("grant_types", ())),
                scopes=tuple(spec.get("scopes", ())),
                auth_method=spec.get("token_endpoint_auth_method", "none"),
                jwks_json=spec.get("jwks_json", ""),
                subject_type=m.SubjectType(spec.get("subject_type", "public")),
                sector_identifier=spec.get("sector_identifier", ""),
                agency=spec.get("agency", ""),
                id_token_signed_response_alg=spec.get("id_token_signed_response_alg",
                                                      DEFAULT_ID_TOKEN_ALGORITHM)))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            what = f"field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise SettingsError(variable, f"entry {i} is not a client: {what}") from None
    return clients


def rewrap_kek(settings: IdentitySettings, batch_size: int) -> int:
    """``rewrap-kek``: prints one line per kind of value; exit 1 naming what no KEK opens."""
    box = SecretBox(settings.kek_bytes(), settings.previous_kek_bytes())
    upgrade_to_head(settings.database_url, MIGRATIONS)
    engine = make_engine(settings.database_url)
    try:
        report = rewrap_sealed_values(engine, box, batch_size=batch_size)
    finally:
        engine.dispose()
    for count in report.counts:
        line = (f"{count.kind}: {count.resealed} re-sealed, {count.already_current} already "
                f"under KEK {report.kek_id}")
        if count.changed_meanwhile:
            line += f", {count.changed_meanwhile} changed by a serving process meanwhile"
        if count.failures:
            line += f", {len(count.failures)} cannot be opened"
        print(line)
    for failure in report.failures:
        print(f"cannot re-seal: {failure}", file=sys.stderr)
    if report.remaining:
        print(f"{report.remaining} value(s) still not under KEK {report.kek_id}: keep the "
              "previous KEKs, fix what is named above (if anything) and run rewrap-kek again")
    else:
        print(f"every sealed value is under KEK {report.kek_id}; the previous KEKs may be "
              "removed from EGOV_IDENTITY_PREVIOUS_KEKS")
    return 1 if report.failures else 0


def rotate_signing_key(settings: IdentitySettings, algs: list[str], retire_old: bool) -> int:
    """``rotate-signing-key``: prints the new kid of each algorithm and what became of the old."""
    service = identity_service(settings)
    try:
        for alg in algs:
            done = service.keyring.rotate_immediately(alg, withdraw_old=retire_old)
            print(f"{alg}: new signing key {done.new_kid}, published and signing now")
            old = ", ".join(done.old_kids)
            if not old:
                print(f"{alg}: there was no earlier key")
            elif retire_old:
                print(f"{alg}: withdrawn from JWKS now: {old} (tokens they signed no longer "
                      "verify once relying parties refresh their JWKS)")
            else:
                until = dt.datetime.fromtimestamp(done.kept_until, dt.UTC).isoformat(
                    timespec="seconds")
                print(f"{alg}: no longer signing, published until {until} for the tokens "
                      f"they signed: {old}")
    finally:
        service.engine.dispose()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m egov_identity",
        description="Serve identity (no subcommand), or run one operator task and exit.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("migrate", help="bring the database to the latest schema")
    rewrap = commands.add_parser(
        "rewrap-kek", help="re-seal every sealed value under EGOV_IDENTITY_KEK")
    rewrap.add_argument("--batch-size", type=int, default=200,
                        help="values per transaction (default 200)")
    rotate = commands.add_parser(
        "rotate-signing-key", help="a new ID-token signing key signs from now on")
    rotate.add_argument("--retire-old", action="store_true",
                        help="withdraw the old keys from JWKS now: tokens they signed stop "
                             "verifying (a suspected key)")
    rotate.add_argument("--alg", choices=ALGORITHMS, action="append",
                        help=f"only this algorithm (default: {' and '.join(ALGORITHMS)})")
    return parser


#: Seconds between purges of expired single-use records and keys.
PURGE_INTERVAL_SECONDS = 600


def _purge_periodically(service: IdentityService, stop: threading.Event) -> None:
    log.info("purging expired records every %d s", PURGE_INTERVAL_SECONDS)
    while not stop.wait(PURGE_INTERVAL_SECONDS):
        try:
            removed = service.purge_expired()
            log.info("expired records purged", extra={"rows": removed})
        except Exception:  # keep serving; the next round retries
            log.exception("purging expired records failed")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings_or_exit(IdentitySettings, "IDENTITY")
    setup_logging(settings.service_name or "identity", settings.log_level)
    try:
        if args.command == "migrate":
            upgrade_to_head(settings.database_url, MIGRATIONS)
            print("identity database is at the latest schema")
            return 0
        if args.command == "rewrap-kek":
            if args.batch_size < 1:
                print("rewrap-kek: --batch-size must be at least 1", file=sys.stderr)
                return 2
            return rewrap_kek(settings, args.batch_size)
        if args.command == "rotate-signing-key":
            return rotate_signing_key(settings, args.alg or list(ALGORITHMS), args.retire_old)
        service = build_service(settings)
    except SettingsError as exc:
        print(f"egov identity: configuration error: {exc}", file=sys.stderr)
        return 2
    except EgovError as exc:  # KEK_UNKNOWN, SEALED_VALUE_UNREADABLE, PAIRWISE_SALT_UNKNOWN
        print(f"egov identity: cannot start: {exc.reason}: {exc.message}", file=sys.stderr)
        return 3
    stop = threading.Event()

    def start_worker(number: int) -> None:
        # After the fork (a thread does not cross it), and once per service: the deletes are
        # idempotent, but N workers would only repeat them.
        if number == 0:
            threading.Thread(target=_purge_periodically, args=(service, stop), name="purge",
                             daemon=True).start()

    def shutdown() -> None:
        stop.set()
        service.engine.dispose()

    # No pooled connection crosses a fork: each worker (or this process) opens its own.
    service.engine.dispose()
    serve(settings, grpc_services(service), http_app=build_http_app(service),
          token_verifier=bearer_verifier(service),
          on_worker_start=start_worker, on_shutdown=shutdown)
    return 0


def bearer_verifier(service: IdentityService) -> AuthTokenVerifier:
    """The callers of identity's gRPC services, from their bearer tokens: identity's own access
    tokens for identity, never its ID tokens (OIDC Core section 2, RFC 9068 section 4), and
    never one revoked at ``/revoke`` (identity, unlike other services, knows at once)."""
    verify = BearerTokenVerifier(TokenVerifier(
        service.keyring, issuer=service.config.issuer,
        audiences=["urn:egov:identity", service.config.issuer],
        token_types=[ACCESS_TOKEN_TYPE],
    ))

    def caller(token: str, *, peer_service: str | None) -> Caller:
        found = verify(token, peer_service=peer_service)
        service.refuse_revoked(found.claims.get("jti"))
        return found

    return caller


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
