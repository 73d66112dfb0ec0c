"""``python -m egov_keys`` serves; ``python -m egov_keys bootstrap`` creates the CA hierarchy;
``python -m egov_keys migrate`` only brings the database to the latest schema (the migration
Job); ``python -m egov_keys rewrap-kek`` re-seals software key blobs under the current KEK.

Exit status: 0 done, 1 some key blob could not be re-wrapped, 2 usage or configuration error,
3 cannot start (CA not bootstrapped, a key unusable with this configuration)."""

from __future__ import annotations

import argparse
import sys

from egov.keys.v1 import keys_pb2_grpc
from egov_common.clock import SystemClock
from egov_common.errors import EgovError
from egov_common.server import GrpcService, serve
from egov_common.settings import SettingsError, load_settings

from egov_keys.adapters.identity import BearerCallerVerifier, IdentityProofVerifier, http_jwks
from egov_keys.adapters.software_custody import SoftwareCustody
from egov_keys.http import build_http_app
from egov_keys.kek_rotation import rewrap_software_keys
from egov_keys.runtime import bootstrap, build_runtime
from egov_keys.servicer import SERVICE_NAME, KeysServicer
from egov_keys.settings import KeysSettings
from egov_keys.storage.repository import KeysRepository, migrate

USAGE = "usage: python -m egov_keys [bootstrap | migrate | rewrap-kek [--batch-size N]]"


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


def main(argv: list[str]) -> int:
    try:
        settings = load_settings(KeysSettings, "KEYS")
        if argv[:1] == ["bootstrap"]:
            created = bootstrap(settings)
            print("created: " + (", ".join(created) if created else "nothing (already there)"))
            return 0
        if argv == ["migrate"]:
            migrate(settings.database_url)
            print("keys database is at the latest schema")
            return 0
        if argv[:1] == ["rewrap-kek"]:
            return rewrap_kek(settings, argv[1:])
        if argv:
            print(USAGE, file=sys.stderr)
            return 2
        proofs = IdentityProofVerifier(
            http_jwks(settings.identity_jwks_url, settings.identity_issuer),
            settings.identity_issuer,
            settings.audiences(),
        )
        runtime = build_runtime(settings, proofs)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except EgovError as exc:  # CA not bootstrapped, CA key unusable
        print(f"cannot start: {exc}", file=sys.stderr)
        return 3
    servicer = KeysServicer(runtime.credentials, runtime.trust)
    serve(
        settings,
        [
            GrpcService(
                SERVICE_NAME,
                lambda server: keys_pb2_grpc.add_KeysServiceServicer_to_server(servicer, server),
            )
        ],
        http_app=build_http_app(runtime.trust),
        token_verifier=BearerCallerVerifier(proofs),
        on_shutdown=runtime.close,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
