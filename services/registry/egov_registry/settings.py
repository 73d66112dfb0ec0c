"""Registry settings: ``EGOV_REGISTRY_*`` environment variables, read once in ``__main__``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from egov_common.settings import ServiceSettings, SettingsError, secret_value
from pydantic import Field, SecretStr

from .adapters.log_key import MIN_PASSPHRASE_LENGTH

__all__ = ["RegistrySettings"]


class RegistrySettings(ServiceSettings):
    #: gRPC calls running at once (the shared default is 16; a call waiting for its group
    #: commit does not count, see ``egov_common.executor``). The registry's calls are short
    #: and CPU-bound (a point query, a group commit), and with more running they mostly wait
    #: for each other's GIL hand-offs: on two cores GetDocument ran at about 5,200/s with 4,
    #: 3,300/s with 16 (SQLite and PostgreSQL alike). Raise it only if the database is slow to
    #: answer (a remote PostgreSQL), where calls wait on the network.
    max_workers: int = Field(default=4, gt=0, le=1024)  # as ServiceSettings bounds it
    #: PEM file of the tree-head signing key (ECDSA P-256, encrypted PKCS#8); created on first
    #: start when absent. Default ``<data_dir>/log-key.pem``. Several replicas must point at
    #: the same key.
    log_key_file: Path | None = None
    #: Passphrase of the key file (a random secret of at least 32 characters, such as
    #: ``openssl rand -base64 32``), or a file holding it. Empty (development): generated into
    #: ``log-key.passphrase`` beside the key.
    log_key_passphrase: SecretStr = SecretStr("")
    log_key_passphrase_file: Path | None = None
    #: How long a reserved document id stays usable, in seconds.
    reservation_ttl: float = Field(default=7 * 24 * 3600, gt=0)
    #: Base of the verification URL printed in QR codes; the document id is appended.
    verification_url_base: str = "http://127.0.0.1:8080/verify/"
    #: Bearer tokens from identity: its issuer URL, its JWKS URL (default: from the issuer's
    #: discovery document), and our audience.
    token_issuer: str = ""
    token_jwks_url: str = ""
    token_audience: str = "urn:egov:registry"  # noqa: S105 - an audience, not a secret
    #: DEVELOPMENT/TESTS ONLY: fixed bearer tokens -> caller, as JSON
    #: ``{"<token>": {"subject": "...", "scopes": ["registry:issue"], "agency": "TH-JUR:..."}}``.
    #: Never printed: excluded from repr and from dumps of the settings.
    static_tokens: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False, exclude=True)
    #: Scopes and agency granted to mTLS service identities (certificate CN), as JSON
    #: ``{"signing": {"scopes": ["registry:issue"], "agency": "*"}}``; ``*`` = any agency.
    trusted_services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def log_key_path(self) -> Path:
        return self.log_key_file or self.data_dir / "log-key.pem"

    def log_key_passphrase_bytes(self) -> bytes | None:
        """The configured passphrase, or None for the development file beside the key; raises
        SettingsError naming the variable when it cannot be read or is too short."""
        variable, raw = secret_value(
            "EGOV_REGISTRY_LOG_KEY_PASSPHRASE", self.log_key_passphrase,
            self.log_key_passphrase_file,
        )
        if not raw and variable.endswith("_FILE"):
            raise SettingsError(variable, "names an empty file")
        if not raw:
            return None
        if len(raw) < MIN_PASSPHRASE_LENGTH:
            raise SettingsError(
                variable,
                f"must be a random secret of at least {MIN_PASSPHRASE_LENGTH} characters "
                "(openssl rand -base64 32)",
            )
        return raw.encode()
