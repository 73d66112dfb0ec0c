"""The dev internal service CA for tests: certificates for services and test clients.

Wraps ``egov_common.tls`` (one implementation of the CA); the ``service_ca`` fixture of
``egov_testing.pytest_plugin`` gives each test its own CA directory. Start a service on it with
``EGOV_<NAME>_TLS_MODE=mtls`` and ``EGOV_<NAME>_TLS_CA_DIR=<ca.directory>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from egov_common import tls

__all__ = ["DevServiceCA"]


@dataclass(frozen=True)
class DevServiceCA:
    """A dev service CA in ``directory`` (created on first use)."""

    directory: Path

    def material(self, name: str) -> tls.TlsMaterial:
        """Certificate and key for service (or test client) ``name`` (its DNS SAN, which is the
        caller identity servers read, and its CN), from this CA."""
        return tls.dev_material(self.directory, name, self.directory / "issued" / name)

    def credentials(self, name: str) -> grpc.ChannelCredentials:
        """Channel credentials presenting ``name``'s certificate and trusting only this CA."""
        return tls.client_credentials(self.material(name))

    def env(self, service: str) -> dict[str, str]:
        """Variables that put service ``service`` (``"KEYS"``) in mTLS mode on this CA."""
        prefix = f"EGOV_{service.upper()}_"
        return {prefix + "TLS_MODE": "mtls", prefix + "TLS_CA_DIR": str(self.directory)}
