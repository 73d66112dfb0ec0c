"""``python -m egov_keys`` serves; ``python -m egov_keys bootstrap`` creates the CA hierarchy;
``python -m egov_keys migrate`` only brings the database to the latest schema (the migration Job)."""

from __future__ import annotations

import sys

from egov.keys.v1 import keys_pb2_grpc
from egov_common.errors import EgovError
from egov_common.server import GrpcService, serve
from egov_common.settings import SettingsError, load_settings

from egov_keys.adapters.identity import BearerCallerVerifier, IdentityProofVerifier, http_jwks
from egov_keys.http import build_http_app
from egov_keys.runtime import bootstrap, build_runtime
from egov_keys.servicer import SERVICE_NAME, KeysServicer
from egov_keys.settings import KeysSettings
from egov_keys.storage.repository import migrate


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
        if argv:
            print("usage: python -m egov_keys [bootstrap | migrate]", file=sys.stderr)
            return 2
        proofs = IdentityProofVerifier(
            http_jwks(settings.identity_jwks_url, settings.identity_issuer), settings.identity_issuer, settings.audiences()
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
