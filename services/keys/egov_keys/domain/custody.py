"""Key custody: where private keys live and how they sign. One protocol, two backends.

The rest of the service only ever holds a :class:`KeyReference`: an opaque, encrypted or
wrapped blob (or a token object's label) plus the public key. No private key object ever leaves
a custody implementation.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme

__all__ = ["CustodyBackend", "KeyCustody", "KeyReference", "KeyRole", "UnknownKek"]


class CustodyBackend(enum.StrEnum):
    SOFTWARE = "software"
    PKCS11 = "pkcs11"


class KeyRole(enum.StrEnum):
    #: CA, OCSP and TSA keys: in a PKCS#11 token they stay token objects.
    SERVICE = "service"
    #: An owner's signing key: in a PKCS#11 token, generated there and exported wrapped.
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class KeyReference:
    """A handle to a private key that only its custody backend can use.

    ``blob`` is AES-256-GCM ciphertext (software), a PKCS#11-wrapped key (owner keys in a
    token) or empty (a key resident in the token, found by ``key_id``).
    """

    key_id: str
    backend: CustodyBackend
    algorithm: KeyAlgorithm
    role: KeyRole
    public_key_der: bytes
    blob: bytes

    def public_key(self) -> PublicKeyTypes:
        return _public_key(self.public_key_der)


@functools.lru_cache(maxsize=4096)
def _public_key(der: bytes) -> PublicKeyTypes:
    # Parsed once per key: every signature is verified against it before it is released.
    # Public key objects are immutable, so one object serves every thread.
    return load_der_public_key(der)


class UnknownKek(ValueError):
    """The key's blob names a key-encryption key this custody was not given (a KEK rotation
    dropped it before every blob was re-wrapped, or a replica runs with another KEK)."""

    def __init__(self, key_id: str, kek_id: str) -> None:
        self.key_id = key_id
        self.kek_id = kek_id
        super().__init__(f"key {key_id} is sealed under KEK id {kek_id!r}, which is not configured")


class KeyCustody(Protocol):
    """Generates keys and signs digests with them. Implementations are process-safe."""

    @property
    def backend(self) -> CustodyBackend: ...

    def generate(self, key_id: str, algorithm: KeyAlgorithm, role: KeyRole) -> KeyReference:
        """A new key pair; ``key_id`` must be unique (it binds the blob to its owner)."""
        ...

    def sign_digest(
        self,
        key: KeyReference,
        digest: bytes,
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> bytes:
        """Sign a precomputed digest. ECDSA signatures are DER ``(r, s)``."""
        ...

    def sign_digests(
        self,
        key: KeyReference,
        digests: Sequence[bytes],
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> list[bytes]:
        """:meth:`sign_digest` for each digest of one SignHash batch, in order."""
        ...
