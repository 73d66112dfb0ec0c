"""Keys service settings: ``EGOV_KEYS_*`` environment variables, read once at start-up.

Secrets (the software KEK, the PKCS#11 PIN) come from the environment or from files mounted
from a secret (``*_FILE``); they are never logged (``describe`` in egov_common prints settings, so
they are SecretStr here).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from egov_common.settings import ServiceSettings, SettingsError, secret_value
from pydantic import Field, SecretStr

__all__ = ["KeysSettings"]


class KeysSettings(ServiceSettings):
    #: Base URL written into certificates (AIA, CRL DP) and GetTrustServiceInfo; default
    #: ``http://<http_listen>``. Must be reachable by every relying party.
    public_base_url: str = ""
    #: Organisation name in CA subjects.
    organization: str = "EGov Trust Services (Development)"
    #: Create the CA hierarchy on start when the database has none (development). Production
    #: runs ``python -m egov_keys bootstrap`` once and sets this false.
    auto_bootstrap: bool = True

    key_backend: Literal["software", "pkcs11"] = "software"
    #: Base64 of 32 random bytes: the AES-256 key-encryption key of the software backend.
    software_kek: SecretStr = SecretStr("")
    software_kek_file: Path | None = None
    #: Names the KEK inside each blob (rotation: a new id for a new KEK).
    software_kek_id: str = "kek-1"
    #: KEKs that still open blobs sealed before a rotation, ``id=base64,id=base64`` (commas or
    #: new lines between entries). Never used to seal; ``python -m egov_keys rewrap-kek`` moves
    #: their blobs to the current KEK, after which they can be dropped.
    software_previous_keks: SecretStr = SecretStr("")
    software_previous_keks_file: Path | None = None
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "egov-keys"  # noqa: S105 (a label, not a secret)
    pkcs11_pin: SecretStr = SecretStr("")
    pkcs11_pin_file: Path | None = None
    pkcs11_kek_label: str = "egov-keys-kek"
    #: Comma-separated labels of KEKs that ``pkcs11_kek_label`` replaced: they still unwrap the
    #: owner keys they wrapped (under the service's own strict template), never wrap new ones.
    pkcs11_previous_kek_labels: str = ""
    #: How long an owner key unwrapped into the token session stays there for further
    #: signatures (each still needs its own SAD); 0 unwraps and destroys it per signature.
    pkcs11_unwrapped_key_seconds: float = Field(default=30.0, ge=0, le=300)

    #: identity's issuer (``iss``) and JWKS URL (default: the ``jwks_uri`` of the issuer's
    #: ``/.well-known/openid-configuration``).
    identity_issuer: str = "http://127.0.0.1:8081"
    identity_jwks_url: str = ""
    #: Comma-separated audiences a proof token may carry (portal client ids, ``urn:egov:keys``).
    token_audiences: str = "urn:egov:keys"  # noqa: S105 (audiences, not a secret)
    min_aal: int = Field(default=2, ge=1, le=3)
    #: IAL a natural person needs for a credential to be issued.
    min_ial_issue: str = "2.3"
    #: Comma-separated IAL order, lowest first.
    ial_order: str = "1.1,1.2,1.3,2.1,2.2,2.3,3"
    #: How old the owner's login may be to sign (Authorize) or to be issued or renew a credential.
    max_auth_age_seconds: int = Field(default=600, gt=0)
    #: How old the owner's login may be to revoke a credential or list credentials.
    max_manage_auth_age_seconds: int = Field(default=600, gt=0)
    seal_scope: str = "keys:seal"
    admin_scope: str = "keys:admin"

    sad_lifetime_seconds: int = Field(default=300, gt=0, le=3600)
    max_signatures_per_authorization: int = Field(default=100, gt=0, le=10000)
    #: Comma-separated callers allowed to call SignHash: mTLS service names (``signing``) or
    #: OAuth client ids written ``client:<id>``. ``*`` allows anyone (development only).
    sign_callers: str = "signing"
    #: Callers that may read and verify the audit log (besides ``keys:admin``), same syntax.
    audit_callers: str = ""

    certificate_lifetime_days: int = Field(default=730, gt=0)
    crl_lifetime_seconds: int = Field(default=86400, gt=60)
    ocsp_validity_seconds: int = Field(default=3600, gt=0)
    #: How often a process reads again which authorities an operator revoked (and whether a
    #: revoked OCSP signer or TSA has a replacement to use).
    authority_recheck_seconds: float = Field(default=5.0, ge=0)
    tsa_policy_oid: str = "1.3.6.1.4.1.60417.1.3"

    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        if not self.http_listen:
            raise SettingsError("EGOV_KEYS_PUBLIC_BASE_URL", "needed when there is no http_listen")
        return f"http://{self.http_listen}"

    def audiences(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.token_audiences.split(",") if a.strip())

    def kek(self) -> bytes:
        """The software KEK; raises SettingsError naming the variable when absent or malformed."""
        variable, raw = secret_value(
            "EGOV_KEYS_SOFTWARE_KEK", self.software_kek, self.software_kek_file
        )
        if not raw:
            raise SettingsError("EGOV_KEYS_SOFTWARE_KEK", "is required for the software backend")
        return _aes256(variable, raw, "")

    def kek_id(self) -> str:
        """The current KEK id (``software_kek_id``), checked against the blob format."""
        return _checked_kek_id("EGOV_KEYS_SOFTWARE_KEK_ID", self.software_kek_id.strip())

    def previous_keks(self) -> dict[str, bytes]:
        """KEK id -> KEK of every previous KEK (empty when none is set).

        Raises SettingsError naming the variable and the entry (its id or position, never the
        key) when an entry is malformed, an id repeats, or an id is the current one.
        """
        variable, raw = secret_value(
            "EGOV_KEYS_SOFTWARE_PREVIOUS_KEKS",
            self.software_previous_keks,
            self.software_previous_keks_file,
        )
        current = self.kek_id()
        keks: dict[str, bytes] = {}
        entries = [e.strip() for e in raw.replace("\n", ",").split(",")]
        for position, entry in enumerate((e for e in entries if e), start=1):
            kek_id, _, value = entry.partition("=")
            kek_id, value = kek_id.strip(), value.strip()
            # A bare key (its padding looks like '=') is reported by position, never quoted.
            if not kek_id or not value:
                raise SettingsError(variable, f"entry {position} is not id=base64")
            _checked_kek_id(variable, kek_id)
            if kek_id == current:
                raise SettingsError(
                    variable, f"{kek_id!r} is the current EGOV_KEYS_SOFTWARE_KEK_ID"
                )
            if kek_id in keks:
                raise SettingsError(variable, f"{kek_id!r} is given twice")
            keks[kek_id] = _aes256(variable, value, f"the KEK {kek_id!r} ")
        return keks

    def pin(self) -> str:
        _, pin = secret_value("EGOV_KEYS_PKCS11_PIN", self.pkcs11_pin, self.pkcs11_pin_file)
        if not pin:
            raise SettingsError("EGOV_KEYS_PKCS11_PIN", "is required for the pkcs11 backend")
        return pin

    @staticmethod
    def split(value: str) -> frozenset[str]:
        return frozenset(v.strip() for v in value.split(",") if v.strip())


Backend = Literal["software", "pkcs11"]


def _aes256(variable: str, raw: str, what: str) -> bytes:
    # The messages never quote the value: it is a key.
    try:
        kek = base64.b64decode(raw, validate=True)
    except ValueError:
        raise SettingsError(variable, f"{what}is not base64") from None
    if len(kek) != 32:
        raise SettingsError(variable, f"{what}must be 32 bytes (AES-256) in base64")
    return kek


def _checked_kek_id(variable: str, kek_id: str) -> str:
    # The id is stored inside every blob behind a one-byte length.
    if not kek_id or len(kek_id.encode()) > 64 or any(c in kek_id for c in "=,\n"):
        raise SettingsError(variable, f"KEK id {kek_id!r} must be 1 to 64 bytes without '=' or ','")
    return kek_id
