"""Identity settings: ``EGOV_IDENTITY_*`` environment variables, read once at start-up."""

from __future__ import annotations

import base64
import binascii
import secrets
import urllib.parse
from pathlib import Path

from egov_common.files import write_durably
from egov_common.settings import ServiceSettings, SettingsError
from pydantic import Field, SecretStr

from egov_identity.domain.keyring import JWKS_MAX_AGE_SECONDS
from egov_identity.domain.levels import AssuranceLevels
from egov_identity.domain.password_policy import read_blocklist_file


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
    #: An agency's own list of passwords to refuse (UTF-8, one per line), on top of the list
    #: shipped with the service.
    password_blocklist_file: Path | None = None

    def issuer_url(self) -> str:
        return (self.issuer or f"http://{self.http_listen}").rstrip("/")

    def check_consistency(self) -> None:
        """Refuse combinations of settings that cannot work together; raises ``SettingsError``
        naming the variables. Each one alone was already checked by its field."""
        v = "EGOV_IDENTITY_"
        rotation, ahead = self.key_rotation_seconds, self.key_publish_ahead_seconds
        if ahead >= rotation:
            raise SettingsError(
                f"{v}KEY_PUBLISH_AHEAD_SECONDS",
                f"({ahead:g}) must be shorter than {v}KEY_ROTATION_SECONDS ({rotation:g}): the "
                "next key is published that long before the current one stops signing")
        if ahead < JWKS_MAX_AGE_SECONDS:
            raise SettingsError(
                f"{v}KEY_PUBLISH_AHEAD_SECONDS",
                f"({ahead:g}) must be at least {JWKS_MAX_AGE_SECONDS}, the max-age of /jwks: "
                "relying parties would meet tokens signed with a key their cached JWKS lacks")
        if self.refresh_token_seconds < self.access_token_seconds:
            raise SettingsError(
                f"{v}REFRESH_TOKEN_SECONDS",
                f"({self.refresh_token_seconds}) must be at least {v}ACCESS_TOKEN_SECONDS "
                f"({self.access_token_seconds}): a refresh token would expire before the "
                "access token it renews")
        if self.ciba_interval_seconds >= self.ciba_expires_seconds:
            raise SettingsError(
                f"{v}CIBA_INTERVAL_SECONDS",
                f"({self.ciba_interval_seconds}) must be shorter than {v}CIBA_EXPIRES_SECONDS "
                f"({self.ciba_expires_seconds}): a client could not poll before the request "
                "expires")
        if self.client_max_failures <= self.max_failures:
            raise SettingsError(
                f"{v}CLIENT_MAX_FAILURES",
                f"({self.client_max_failures}) must be greater than {v}MAX_FAILURES "
                f"({self.max_failures}): one person's wrong passwords would lock every person "
                "of that portal out")
        issuer = urllib.parse.urlsplit(self.issuer_url())
        if issuer.scheme not in ("https", "http") or not issuer.netloc or issuer.query \
                or issuer.fragment:
            raise SettingsError(f"{v}ISSUER", "must be an https URL without query or fragment "
                                "(OIDC Discovery 1.0 section 3; http only for development)")
        self.ial_level_names()

    def ial_level_names(self) -> AssuranceLevels:
        try:
            return AssuranceLevels.parse(self.ial_levels)
        except ValueError as exc:
            raise SettingsError("EGOV_IDENTITY_IAL_LEVELS", str(exc)) from None

    def password_blocklist(self) -> frozenset[str]:
        """The agency's blocklist (empty when unset); raises SettingsError when unreadable."""
        if self.password_blocklist_file is None:
            return frozenset()
        try:
            return read_blocklist_file(self.password_blocklist_file)
        except OSError as exc:
            raise SettingsError("EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE",
                                f"cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SettingsError("EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE",
                                "is not UTF-8 text") from None

    def kek_bytes(self) -> bytes:
        """The current KEK; raises SettingsError naming the variable when malformed."""
        raw = self.kek.get_secret_value().strip()
        variable = "EGOV_IDENTITY_KEK"
        if not raw:
            path = self.data_dir / "kek"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # on disk before anything is sealed under it
                write_durably(path, base64.b64encode(secrets.token_bytes(32)),
                              mode=0o600, replace=False)
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
