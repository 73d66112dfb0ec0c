"""``python -m egov_registry``: migrate the database, open the log key, serve gRPC.

``python -m egov_registry migrate`` only brings the database to the latest schema and exits (the
migration Job that runs before a rollout).
"""

from __future__ import annotations

import sys

import grpc
from egov.registry.v1 import registry_pb2, registry_pb2_grpc
from egov_common.clock import SystemClock
from egov_common.server import GrpcService, serve
from egov_common.settings import SettingsError, load_settings_or_exit

from .adapters.callers import build_token_verifier
from .adapters.log_key import load_or_create_log_key
from .servicer import RegistryServicer
from .settings import RegistrySettings
from .storage.schema import migrate
from .storage.store import RegistryStore


def main(argv: list[str]) -> int:
    settings = load_settings_or_exit(RegistrySettings, "REGISTRY")
    if argv == ["migrate"]:
        migrate(settings.database_url)
        print("registry database is at the latest schema")
        return 0
    if argv:
        print("usage: python -m egov_registry [migrate]", file=sys.stderr)
        return 2
    try:  # before migrating: a configuration error changes nothing
        log_key = load_or_create_log_key(settings.log_key_path, settings.log_key_passphrase_bytes())
    except SettingsError as exc:
        print(f"egov registry: configuration error: {exc}", file=sys.stderr)
        return 2
    migrate(settings.database_url)
    store = RegistryStore(
        settings.database_url,
        clock=SystemClock(),
        log_key=log_key,
        reservation_ttl_ms=int(settings.reservation_ttl * 1000),
    )
    servicer = RegistryServicer(
        store,
        verification_url_base=settings.verification_url_base,
        trusted_services=settings.trusted_services,
    )
    service_name = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name

    def register(server: grpc.Server) -> None:
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)

    serve(
        settings,
        [GrpcService(service_name, register)],
        token_verifier=build_token_verifier(
            static_tokens=settings.static_tokens,
            issuer=settings.token_issuer,
            jwks_url=settings.token_jwks_url,
            audience=settings.token_audience,
        ),
        on_shutdown=store.close,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
