"""What signing needs from the outside world: the keys service and the registry.

Adapters implement these over gRPC; tests implement them in process. Only digests cross the keys
port (never the PDF), and no private key ever comes back through it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = [
    "KeyAlgorithm",
    "KeysPort",
    "Party",
    "RegistrationSpec",
    "RegistryPort",
    "ReservedDocumentId",
    "SignatureActivationData",
    "SigningCredential",
]


class KeyAlgorithm(enum.StrEnum):
    ECDSA_P256 = "ECDSA_P256"
    ECDSA_P384 = "ECDSA_P384"
    RSA_3072 = "RSA_3072"

    @property
    def is_ec(self) -> bool:
        return self is not KeyAlgorithm.RSA_3072

    @property
    def max_signature_bytes(self) -> int:
        """Largest signature value (DER ECDSA with both integers padded, or the RSA modulus)."""
        return {"ECDSA_P256": 72, "ECDSA_P384": 104, "RSA_3072": 384}[self.value]


@dataclass(frozen=True)
class SigningCredential:
    """A keys-service credential as signing sees it: the certificate chain, no key."""

    credential_id: str
    #: DER certificates, signer first, root last
    certificate_chain: tuple[bytes, ...]
    key_algorithm: KeyAlgorithm
    #: An agency's e-seal (keys' CREDENTIAL_KIND_ELECTRONIC_SEAL). Its certificate looks like a
    #: legal person's, which a representative uses: only keys knows which of the two it is.
    electronic_seal: bool = False


@dataclass(frozen=True)
class SignatureActivationData:
    """CSC SAD from keys.Authorize: single use, bound to the authorised hashes."""

    value: str
    expires_at: datetime | None = None


class KeysPort(Protocol):
    def get_credential(self, credential_id: str) -> SigningCredential:
        """The credential's chain and key algorithm. Raises the keys service's EgovErrors."""
        ...

    def authorize(
        self,
        credential_id: str,
        hashes: Sequence[bytes],
        *,
        hash_algorithm: str,
        authorization_proof: str,
        description: str,
    ) -> SignatureActivationData:
        """keys.Authorize for exactly ``hashes`` (one SAD for all)."""
        ...

    def sign_hash(
        self,
        credential_id: str,
        sad: SignatureActivationData,
        hashes: Sequence[bytes],
        *,
        hash_algorithm: str,
        key_algorithm: KeyAlgorithm,
    ) -> list[bytes]:
        """keys.SignHash: one signature value per hash, in order; burns the SAD."""
        ...


@dataclass(frozen=True)
class Party:
    """An identifier with its namespace (TH-PID, TH-JUR, PASSPORT)."""

    namespace: str
    value: str


@dataclass(frozen=True)
class RegistrationSpec:
    """What the registry needs besides the digest (see registry.RegisterDocument)."""

    issuer: Party
    document_type: str
    idempotency_key: str
    subject: Party | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: Where the signing request carried it (``options.registration``), so that the registry's
    #: refusal of one of its fields names the field of the request the caller sent.
    request_field: str = ""


@dataclass(frozen=True)
class ReservedDocumentId:
    document_id: str
    verification_url: str


class RegistryPort(Protocol):
    def reserve_document_id(self, spec: RegistrationSpec) -> ReservedDocumentId: ...

    def register(
        self,
        spec: RegistrationSpec,
        *,
        document_id: str,
        sha256: bytes,
        signer_certificate_sha256: Sequence[bytes],
    ) -> None:
        """Register the final PDF. Raises EgovError on failure."""
        ...
