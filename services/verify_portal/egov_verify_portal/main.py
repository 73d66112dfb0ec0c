"""Start-up: settings -> gRPC channels to the peers -> the ASGI app -> egov_common's server.

The portal has no gRPC server of its own: ``egov_common.server.serve`` runs only its HTTP app
(uvicorn), with the platform's JSON logging, OpenTelemetry (gRPC client spans towards signing
and registry) and graceful drain on SIGTERM.
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

from egov_common.channels import open_channel
from egov_common.logging import setup_logging
from egov_common.server import serve
from egov_common.settings import SettingsError, load_settings
from egov_common.telemetry import Telemetry
from egov_common.telemetry import setup as setup_telemetry
from starlette.types import ASGIApp

from .adapters.peers import GrpcTrustServices
from .app import PortalConfig, create_app
from .domain.summary_pdf import SummaryFonts
from .settings import VerifyPortalSettings

log = logging.getLogger("egov_verify_portal")


def build(settings: VerifyPortalSettings, telemetry: Telemetry | None = None) -> ASGIApp:
    """The portal's ASGI app wired to its peers as ``settings`` say."""
    log_key = settings.registry_log_key_file
    services = GrpcTrustServices(
        open_channel(settings.signing_address, settings, telemetry=telemetry),
        open_channel(settings.registry_address, settings, telemetry=telemetry),
        timeout=settings.peer_timeout,
        log_key_pem=log_key.read_bytes() if log_key is not None else None,
    )
    config = PortalConfig(
        max_upload_bytes=settings.max_upload_bytes,
        seal_key=settings.seal_key_bytes(),
        report_ttl=timedelta(seconds=settings.report_ttl),
        fonts=SummaryFonts(str(settings.font_regular), str(settings.font_bold)),
        public_url=settings.public_url,
        max_uploads_in_flight=settings.max_uploads_in_flight,
        body_read_timeout=settings.body_read_timeout,
        upload_deadline=settings.upload_deadline,
    )
    return create_app(services, config)


def main() -> int:
    try:
        settings = load_settings(VerifyPortalSettings, "VERIFY_PORTAL")
    except SettingsError as exc:
        print(f"egov_verify_portal: bad setting {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.service_name, settings.log_level)
    if not settings.report_seal_key:
        log.warning(
            "EGOV_VERIFY_PORTAL_REPORT_SEAL_KEY is not set: report downloads work only on this "
            "replica, until it restarts"
        )
    telemetry = setup_telemetry(settings.service_name, settings)
    app = build(settings, telemetry)
    log.info("verify portal on http://%s", settings.http_listen)
    serve(settings, [], http_app=app, telemetry=telemetry)
    return 0
