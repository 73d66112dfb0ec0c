"""``python -m egov_keys`` serves; ``python -m egov_keys bootstrap`` creates the CA hierarchy
(and replaces a revoked issuing CA, OCSP signer or TSA); ``python -m egov_keys migrate`` only
brings the database to the latest schema (the migration Job); ``python -m egov_keys rewrap-kek``
re-seals software key blobs under the current KEK; ``python -m egov_keys revoke-authority NAME
--reason R`` revokes the certificate of an issuing CA, an OCSP signer or the TSA.

Exit status: 0 done, 1 some key blob could not be re-wrapped, 2 usage or configuration error,
3 cannot start (CA not bootstrapped, a key unusable with this configuration), cannot revoke
(an unknown authority, the root), or a bootstrap that stopped part way (what it made is kept;
run it again)."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import traceback
from typing import Any

import grpc
from egov.keys.v1 import keys_pb2_grpc
from egov_common.auth import Caller
from egov_common.clock import SystemClock
from egov_common.errors import EgovError
from egov_common.server import GrpcService, serve
from egov_common.settings import SettingsError, load_settings

from egov_keys.adapters.identity import BearerCallerVerifier, IdentityProofVerifier, http_jwks
from egov_keys.adapters.software_custody import SoftwareCustody
from egov_keys.domain.model import RevocationReason
from egov_keys.http import build_http_app
from egov_keys.kek_rotation import rewrap_software_keys
from egov_keys.runtime import KeysRuntime, bootstrap, build_runtime, trust_services
from egov_keys.servicer import SERVICE_NAME, KeysServicer
from egov_keys.settings import KeysSettings
from egov_keys.storage.repository import KeysRepository, migrate

USAGE = (
    "usage: python -m egov_keys [bootstrap | migrate | rewrap-kek [--batch-size N] | "
    "revoke-authority NAME --reason REASON]"
)


def revoke_authority(settings: KeysSettings, argv: list[str]) -> int:
    """Revoke an authority's certificate; say what follows (CRL, OCSP, replacement)."""
    parser = argparse.ArgumentParser(prog="python -m egov_keys revoke-authority", add_help=False)
    parser.add_argument("name")
    parser.add_argument(
        "--reason", required=True, choices=[reason.value for reason in RevocationReason]
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        return 2
    migrate(settings.database_url)
    repository = KeysRepository.from_url(settings.database_url)
    try:
        trust = trust_services(settings, repository, {}, SystemClock())
        revoked = trust.revoke_authority(args.name, RevocationReason(args.reason), "operator")
    except EgovError as exc:
        print(f"revoke-authority: {exc.message}", file=sys.stderr)
        return 3
    finally:
        repository.dispose()
    if not revoked:
        print(f"{args.name} was revoked already; nothing changed")
        return 0
    print(
        f"{args.name} revoked ({args.reason}): its issuer's CRL and OCSP say so now, and the "
        "running service stops using it within seconds"
    )
    print("run 'python -m egov_keys bootstrap' to make its replacement, which the running "
          "service then takes up")
    if not (args.name.startswith("ocsp-") or args.name == "tsa"):
        print("its credentials sign no more; their owners renew them under the replacement "
              "(RenewCredential)")
    return 0


def rewrap_kek(settings: KeysSettings, argv: list[str]) -> int:
    """Re-seal every software blob under the current KEK; print a summary (no key material)."""
    parser = argparse.ArgumentParser(prog="python -m egov_keys rewrap-kek", add_help=False)
    parser.add_argument("--batch-size", type=int, default=100)
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        return 2
    if not 1 <= args.batch_size <= 10_000:
        print("rewrap-kek: --batch-size is 1 to 10000", file=sys.stderr)
        return 2
    has_software_kek = bool(settings.software_kek.get_secret_value() or settings.software_kek_file)
    if settings.key_backend == "pkcs11" and not has_software_kek:
        print(
            "rewrap-kek: the pkcs11 backend's key-encryption key "
            f"(EGOV_KEYS_PKCS11_KEK_LABEL={settings.pkcs11_kek_label!r}) lives in the HSM and "
            "never leaves it; rotate it with the HSM's own key management. This command "
            "re-wraps software-custody blobs only, and no EGOV_KEYS_SOFTWARE_KEK is set.",
            file=sys.stderr,
        )
        return 2
    custody = SoftwareCustody(settings.kek(), settings.kek_id(), settings.previous_keks())
    migrate(settings.database_url)
    repository = KeysRepository.from_url(settings.database_url)

    def progress(seen: int) -> None:
        if seen % 10_000 < args.batch_size:
            print(f"rewrap-kek: {seen} key blobs looked at", file=sys.stderr, flush=True)

    try:
        report = rewrap_software_keys(
            repository, custody, SystemClock(), batch_size=args.batch_size, progress=progress
        )
    finally:
        repository.dispose()
    print("\n".join(report.summary()))
    if settings.key_backend == "pkcs11":
        print(
            "keys wrapped by the HSM-resident KEK "
            f"({settings.pkcs11_kek_label!r}) were left as they are"
        )
    if not report.ok:
        print(
            "rewrap-kek: some key blobs open under no KEK given: keep every KEK they name "
            "(EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS) and run this again",
            file=sys.stderr,
        )
        return 1
    return 0


def _bootstrap(settings: KeysSettings) -> int:
    try:
        created = bootstrap(settings)
    except (SettingsError, EgovError):
        raise
    except Exception:  # an HSM gone, the database lost: each authority made so far is kept
        traceback.print_exc()
        print(
            "bootstrap stopped part way: what it made is kept, and running it again makes the "
            "rest (until then a replaced authority's name answers CA_BEING_REPLACED)",
            file=sys.stderr,
        )
        return 3
    print("created: " + (", ".join(created) if created else "nothing (already there)"))
    return 0


def main(argv: list[str]) -> int:
    try:
        settings = load_settings(KeysSettings, "KEYS")
        if argv[:1] == ["bootstrap"]:
            return _bootstrap(settings)
        if argv == ["migrate"]:
            migrate(settings.database_url)
            print("keys database is at the latest schema")
            return 0
        if argv[:1] == ["rewrap-kek"]:
            return rewrap_kek(settings, argv[1:])
        if argv[:1] == ["revoke-authority"]:
            return revoke_authority(settings, argv[1:])
        if argv:
            print(USAGE, file=sys.stderr)
            return 2
        # Start-up checks (schema, CA hierarchy, every CA key signs) happen here, before serving.
        proofs = _proofs(settings)
        runtime = build_runtime(settings, proofs)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except EgovError as exc:  # CA not bootstrapped, CA key unusable
        print(f"cannot start: {exc}", file=sys.stderr)
        return 3
    if settings.processes > 1:
        # Workers are forked: no database connection, PKCS#11 session or library state (SoftHSM2
        # is not fork-safe) may cross the fork. The checked runtime is closed; each worker
        # builds its own, logs in to the token on its own session and test-signs again.
        runtime.close()
        worker = _Worker(settings, start_lock=multiprocessing.get_context("fork").Lock())
    else:
        worker = _Worker(settings, runtime, proofs)
    serve(
        settings,
        [GrpcService(SERVICE_NAME, worker.register)],
        http_app=worker.http_app,
        token_verifier=worker.verify_bearer,
        on_worker_start=worker.start,
        on_shutdown=worker.close,
    )
    return 0


class _HttpApp:
    """The worker's ASGI app, which exists only once the worker started."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._worker.app(scope, receive, send)


def _proofs(settings: KeysSettings) -> IdentityProofVerifier:
    return IdentityProofVerifier(
        http_jwks(settings.identity_jwks_url, settings.identity_issuer),
        settings.identity_issuer,
        settings.audiences(),
    )


class _Worker:
    """What one serving process uses: given (one process) or built after the fork (workers of
    ``EGOV_KEYS_PROCESSES`` > 1, where the database and the CA hierarchy were already checked)."""

    def __init__(
        self,
        settings: KeysSettings,
        runtime: KeysRuntime | None = None,
        proofs: IdentityProofVerifier | None = None,
        *,
        start_lock: Any = None,
    ) -> None:
        self._settings = settings
        self._start_lock = start_lock
        self._runtime: KeysRuntime | None = None
        self._app: Any = None
        self._bearer: BearerCallerVerifier | None = None
        if runtime is not None and proofs is not None:
            self._ready(runtime, proofs)

    def _ready(self, runtime: KeysRuntime, proofs: IdentityProofVerifier) -> None:
        self._runtime = runtime
        self._app = build_http_app(runtime.trust)
        self._bearer = BearerCallerVerifier(proofs)

    def start(self, number: int) -> None:
        if self._bearer is not None:
            return
        proofs = _proofs(self._settings)
        # Workers open the token one after another: SoftHSM2's file token store fails
        # (GeneralError, NoSuchToken) when two processes initialise and log in at once.
        acquired = self._start_lock is not None and self._start_lock.acquire(timeout=120)
        try:
            runtime = build_runtime(self._settings, proofs, prepare_database=False)
        finally:
            if acquired:
                self._start_lock.release()
        self._ready(runtime, proofs)

    def register(self, server: grpc.Server) -> None:
        assert self._runtime is not None
        servicer = KeysServicer(self._runtime.credentials, self._runtime.trust)
        keys_pb2_grpc.add_KeysServiceServicer_to_server(servicer, server)

    def verify_bearer(self, token: str, *, peer_service: str | None) -> Caller:
        assert self._bearer is not None
        return self._bearer(token, peer_service=peer_service)

    @property
    def http_app(self) -> _HttpApp:
        return _HttpApp(self)

    @property
    def app(self) -> Any:
        return self._app

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
