"""Identity settings: ``EGOV_IDENTITY_*`` environment variables, read once at start-up."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from egov_common.settings import ServiceSettings, SettingsError
from pydantic import Field, SecretStr


class IdentitySettings(ServiceSettings):
    """Durations are seconds."""

    #: The OIDC issuer URL (``iss``); default ``http://<http_listen>``.
    issuer: str = ""
    #: Key-encryption key for signing keys and TOTP seeds at rest: 32 bytes, base64. Every
    #: process sharing a database needs the same one. Empty: a dev key in ``<data_dir>/kek``.
    kek: SecretStr = SecretStr("")
    #: Earlier KEKs, comma-separated base64: what they sealed still opens, and ``rewrap-kek``
    #: re-seals it under ``kek``. Drop one once ``rewrap-kek`` reports nothing left under it.
    previous_keks: SecretStr = SecretStr("")
    #: Secret for pairwise subject identifiers (base64); default: a random one kept sealed in
    #: the database (before KEK rotation existed it was the KEK; that one is kept).
    pairwise_salt: SecretStr = SecretStr("")
    #: Ordered IAL names, lowest first.
    ial_levels: str = "1.1,1.2,1.3,2.1,2.2,2.3,3"
    access_token_seconds: int = Field(default=300, gt=0)
    id_token_seconds: int = Field(default=300, gt=0)
    refresh_token_seconds: int = Field(default=8 * 3600, gt=0)
    code_seconds: int = Field(default=60, gt=0)
    login_session_seconds: int = Field(default=600, gt=0)
    proofing_seconds: int = Field(default=3600, gt=0)
    ciba_expires_seconds: int = Field(default=120, gt=0)
    ciba_interval_seconds: int = Field(default=5, gt=0)
    #: A signing key signs this long; its successor is in JWKS ``key_publish_ahead_seconds``
    #: before (longer than relying parties' JWKS cache, PyJWT's is 5 minutes).
    key_rotation_seconds: float = Field(default=30 * 86400, gt=0)
    key_publish_ahead_seconds: float = Field(default=86400, gt=0)
    #: Lock-out: failures per login name / per client within the window, and lock duration.
    max_failures: int = Field(default=5, gt=0)
    client_max_failures: int = Field(default=50, gt=0)
    failure_window_seconds: float = Field(default=900, gt=0)
    lockout_seconds: float = Field(default=300, gt=0)
    #: Argon2id cost (RFC 9106 / OWASP: t=2, m=19 MiB, p=1).
    argon2_time_cost: int = Field(default=2, gt=0)
    argon2_memory_kib: int = Field(default=19456, ge=8)
    #: Synthetic population (development authoritative source).
    population_seed: int = 2569
    population_size: int = Field(default=200, ge=10)
    #: JSON file of clients registered at start-up (idempotent): a list of objects with the
    #: fields of egov.identity.v1.Client (``agency`` as "TH-JUR:<number>"). Bootstraps the
    #: admin machine client that may call RegisterClient (scope identity:admin).
    bootstrap_clients_file: Path | None = None

    def issuer_url(self) -> str:
        return (self.issuer or f"http://{self.http_listen}").rstrip("/")

    def kek_bytes(self) -> bytes:
        """The current KEK; raises SettingsError naming the variable when malformed."""
        raw = self.kek.get_secret_value().strip()
        variable = "EGOV_IDENTITY_KEK"
        if not raw:
            path = self.data_dir / "kek"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(base64.b64encode(secrets.token_bytes(32)).decode())
            raw = path.read_text().strip()
            variable = f"EGOV_IDENTITY_KEK (development key file {path})"
        return _kek(raw, variable)

    def previous_kek_bytes(self) -> tuple[bytes, ...]:
        """The previous KEKs in the order given; raises SettingsError naming the entry."""
        entries = [e.strip() for e in self.previous_keks.get_secret_value().split(",")]
        return tuple(_kek(e, f"EGOV_IDENTITY_PREVIOUS_KEKS entry {i}")
                     for i, e in enumerate(entries, 1) if e)

    def pairwise_salt_bytes(self) -> bytes:
        raw = self.pairwise_salt.get_secret_value().strip()
        if not raw:
            return b""
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError("EGOV_IDENTITY_PAIRWISE_SALT", "is not base64") from None


def _kek(raw: str, variable: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(variable, "is not base64") from None
    if len(key) != 32:
        raise SettingsError(variable, "must be 32 bytes (AES-256) in base64")
    return key
