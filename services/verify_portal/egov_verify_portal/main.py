"""Start-up: settings -> gRPC channels to the peers -> the ASGI app -> uvicorn."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

import grpc
import uvicorn
from egov_common.channels import open_channel as common_open_channel
from egov_common.logging import setup_logging
from egov_common.settings import SettingsError, load_settings

from .adapters.peers import GrpcTrustServices
from .app import PortalConfig, create_app
from .domain.summary_pdf import SummaryFonts
from .settings import VerifyPortalSettings

log = logging.getLogger("egov_verify_portal")


def open_channel(address: str, settings: VerifyPortalSettings) -> grpc.Channel:
    """A channel with the platform's TLS, tracing and deadline defaults (egov_common)."""
    return common_open_channel(address, settings)


def build(settings: VerifyPortalSettings) -> object:
    services = GrpcTrustServices(
        open_channel(settings.signing_address, settings),
        open_channel(settings.registry_address, settings),
        timeout=settings.peer_timeout,
        log_key_pem=(
            settings.registry_log_key_file.read_bytes() if settings.registry_log_key_file else None
        ),
    )
    config = PortalConfig(
        max_upload_bytes=settings.max_upload_bytes,
        seal_key=settings.seal_key_bytes(),
        report_ttl=timedelta(seconds=settings.report_ttl),
        fonts=SummaryFonts(str(settings.font_regular), str(settings.font_bold)),
        public_url=settings.public_url,
    )
    return create_app(services, config)


def main() -> int:
    try:
        settings = load_settings(VerifyPortalSettings, "VERIFY_PORTAL")
    except SettingsError as exc:
        print(f"egov_verify_portal: bad setting {exc}", file=sys.stderr)
        return 2
    setup_logging("verify_portal", settings.log_level)
    if not settings.report_seal_key:
        log.warning(
            "EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY is not set: report downloads work only on this "
            "replica, until it restarts"
        )
    host, _, port = settings.http_listen.rpartition(":")
    app = build(settings)
    log.info("verify portal listening on http://%s:%s", host, port)
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=host.strip("[]"),
        port=int(port),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.grace_period),
    )
    return 0
