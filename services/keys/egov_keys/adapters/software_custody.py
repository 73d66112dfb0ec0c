"""Software key custody: private keys encrypted at rest with AES-256-GCM under a KEK.

Blob layout: ``b"EGK1" | len(kek_id) (1 byte) | kek_id | nonce (12) | ciphertext+tag``. The
associated data binds the blob to its key id, algorithm and KEK id, so a blob copied onto
another credential's row does not decrypt, nor does one whose KEK id was edited.

KEK rotation: new keys are always sealed under the current KEK; blobs that name a previous KEK
still open (so every replica can be given the new KEK before any blob moves), and
:meth:`SoftwareCustody.rewrap` re-seals one under the current KEK.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole, UnknownKek

__all__ = ["KekMismatch", "SoftwareCustody", "UnknownKek", "blob_kek_id"]

_MAGIC = b"EGK1"


class KekMismatch(ValueError):
    """The blob does not open under the KEK given for its id (wrong KEK, or a moved or edited
    blob)."""

    def __init__(self, key_id: str, kek_id: str) -> None:
        self.key_id = key_id
        self.kek_id = kek_id
        super().__init__(f"key {key_id} does not open under the KEK given as {kek_id!r}")


def blob_kek_id(blob: bytes) -> str | None:
    """The KEK id a software blob names, or None when ``blob`` is not a software blob."""
    if len(blob) < 6 or not blob.startswith(_MAGIC):
        return None
    n = blob[4]
    if n == 0 or len(blob) < 5 + n + 12 + 16:
        return None
    return blob[5 : 5 + n].decode("utf-8", "replace")


class SoftwareCustody:
    """Keys generated with ``cryptography``; only their AES-GCM ciphertext leaves this class."""

    def __init__(
        self, kek: bytes, kek_id: str = "kek-1", previous: Mapping[str, bytes] | None = None
    ) -> None:
        previous = previous or {}
        if kek_id in previous:
            raise ValueError("a previous KEK cannot have the current KEK's id")
        keks = {kek_id: kek, **previous}
        self._aeads: dict[bytes, AESGCM] = {}
        for name, key in keks.items():
            if len(key) != 32:
                raise ValueError("a key-encryption key must be 32 bytes (AES-256)")
            if not name or len(name.encode()) > 64:
                raise ValueError("a KEK id must be 1 to 64 bytes")
            self._aeads[name.encode()] = AESGCM(key)
        self._kek_id = kek_id.encode()

    @property
    def backend(self) -> CustodyBackend:
        return CustodyBackend.SOFTWARE

    @property
    def kek_id(self) -> str:
        """The KEK id every new blob is sealed under."""
        return self._kek_id.decode()

    @property
    def kek_ids(self) -> frozenset[str]:
        """Every KEK id this custody can open: the current one and the previous ones."""
        return frozenset(k.decode() for k in self._aeads)

    @staticmethod
    def _aad(key_id: str, algorithm: KeyAlgorithm, kek_id: bytes) -> bytes:
        return (
            b"egov-keys/software/v1|"
            + key_id.encode()
            + b"|"
            + algorithm.value.encode()
            + (b"|" + kek_id)
        )

    def _seal(self, key_id: str, algorithm: KeyAlgorithm, der: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        sealed = self._aeads[self._kek_id].encrypt(
            nonce, der, self._aad(key_id, algorithm, self._kek_id)
        )
        return _MAGIC + bytes([len(self._kek_id)]) + self._kek_id + nonce + sealed

    def _unseal(self, key: KeyReference) -> bytes:
        """The PKCS#8 DER inside ``key``'s blob, under whichever configured KEK it names.

        Raises UnknownKek (the named KEK is not configured), KekMismatch (it does not open)
        or ValueError (not a software blob).
        """
        blob = key.blob
        if key.backend is not CustodyBackend.SOFTWARE or blob_kek_id(blob) is None:
            raise ValueError("not a software key blob")
        n = blob[4]
        kek_id, rest = blob[5 : 5 + n], blob[5 + n :]
        aead = self._aeads.get(kek_id)
        if aead is None:
            raise UnknownKek(key.key_id, kek_id.decode("utf-8", "replace"))
        try:
            return aead.decrypt(rest[:12], rest[12:], self._aad(key.key_id, key.algorithm, kek_id))
        except InvalidTag:
            raise KekMismatch(key.key_id, kek_id.decode("utf-8", "replace")) from None

    def generate(self, key_id: str, algorithm: KeyAlgorithm, role: KeyRole) -> KeyReference:
        private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if algorithm is KeyAlgorithm.ECDSA_P256:
            private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm is KeyAlgorithm.ECDSA_P384:
            private = ec.generate_private_key(ec.SECP384R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        blob = self._seal(key_id, algorithm, der)
        public_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return KeyReference(key_id, CustodyBackend.SOFTWARE, algorithm, role, public_der, blob)

    def rewrap(self, key: KeyReference) -> KeyReference:
        """``key`` with its blob re-sealed under the current KEK (a fresh nonce; the AAD names
        the current KEK id). Raises like signing would when the blob does not open; the new
        blob is opened once before it is returned."""
        der = self._unseal(key)
        rewrapped = dataclasses.replace(key, blob=self._seal(key.key_id, key.algorithm, der))
        if self._unseal(rewrapped) != der:  # pragma: no cover - AES-GCM round trip
            raise ValueError("re-sealed blob does not open")
        return rewrapped

    def check(self, key: KeyReference) -> None:
        """Open ``key``'s blob without using it; raises like :meth:`rewrap`."""
        self._unseal(key)

    def _open(self, key: KeyReference) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        private = serialization.load_der_private_key(self._unseal(key), password=None)
        if not isinstance(private, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise ValueError("unexpected key type in blob")
        return private

    def sign_digest(
        self,
        key: KeyReference,
        digest: bytes,
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> bytes:
        return self.sign_digests(key, [digest], hash_algorithm, scheme)[0]

    def sign_digests(
        self,
        key: KeyReference,
        digests: Sequence[bytes],
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> list[bytes]:
        """Sign each digest; the key is opened once for the batch and dropped afterwards."""
        if any(len(digest) != hash_algorithm.digest_size for digest in digests):
            raise ValueError("digest length does not match the hash algorithm")
        private = self._open(key)
        prehashed = utils.Prehashed(hash_algorithm.hashes())
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if scheme is not SignatureScheme.ECDSA:
                raise ValueError("EC keys sign with ECDSA only")
            ecdsa = ec.ECDSA(prehashed)
            return [private.sign(digest, ecdsa) for digest in digests]
        if scheme is SignatureScheme.RSA_PKCS1V15:
            return [private.sign(digest, padding.PKCS1v15(), prehashed) for digest in digests]
        if scheme is SignatureScheme.RSA_PSS:
            pss = padding.PSS(padding.MGF1(hash_algorithm.hashes()), hash_algorithm.digest_size)
            return [private.sign(digest, pss, prehashed) for digest in digests]
        raise ValueError("RSA keys sign with PKCS#1 v1.5 or PSS")
