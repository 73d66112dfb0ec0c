"""Software key custody: private keys encrypted at rest with AES-256-GCM under a KEK.

Blob layout: ``b"EGK1" | len(kek_id) (1 byte) | kek_id | nonce (12) | ciphertext+tag``. The
associated data binds the blob to its key id, algorithm and KEK id, so a blob copied onto
another credential's row does not decrypt.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole

__all__ = ["SoftwareCustody"]

_MAGIC = b"EGK1"


class SoftwareCustody:
    """Keys generated with ``cryptography``; only their AES-GCM ciphertext leaves this class."""

    def __init__(self, kek: bytes, kek_id: str = "kek-1") -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
        if not kek_id or len(kek_id.encode()) > 64:
            raise ValueError("kek_id must be 1 to 64 bytes")
        self._aead = AESGCM(kek)
        self._kek_id = kek_id.encode()

    @property
    def backend(self) -> CustodyBackend:
        return CustodyBackend.SOFTWARE

    def _aad(self, key_id: str, algorithm: KeyAlgorithm) -> bytes:
        return (
            b"egov-keys/software/v1|"
            + key_id.encode()
            + b"|"
            + algorithm.value.encode()
            + (b"|" + self._kek_id)
        )

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
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, der, self._aad(key_id, algorithm))
        blob = _MAGIC + bytes([len(self._kek_id)]) + self._kek_id + nonce + sealed
        public_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return KeyReference(key_id, CustodyBackend.SOFTWARE, algorithm, role, public_der, blob)

    def _open(self, key: KeyReference) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        blob = key.blob
        if key.backend is not CustodyBackend.SOFTWARE or not blob.startswith(_MAGIC):
            raise ValueError("not a software key blob")
        n = blob[4]
        kek_id, rest = blob[5 : 5 + n], blob[5 + n :]
        if kek_id != self._kek_id:
            raise ValueError("key blob is sealed under another key-encryption key")
        der = self._aead.decrypt(rest[:12], rest[12:], self._aad(key.key_id, key.algorithm))
        private = serialization.load_der_private_key(der, password=None)
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
        if len(digest) != hash_algorithm.digest_size:
            raise ValueError("digest length does not match the hash algorithm")
        private = self._open(key)
        prehashed = utils.Prehashed(hash_algorithm.hashes())
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if scheme is not SignatureScheme.ECDSA:
                raise ValueError("EC keys sign with ECDSA only")
            return private.sign(digest, ec.ECDSA(prehashed))
        if scheme is SignatureScheme.RSA_PKCS1V15:
            return private.sign(digest, padding.PKCS1v15(), prehashed)
        if scheme is SignatureScheme.RSA_PSS:
            pss = padding.PSS(padding.MGF1(hash_algorithm.hashes()), hash_algorithm.digest_size)
            return private.sign(digest, pss, prehashed)
        raise ValueError("RSA keys sign with PKCS#1 v1.5 or PSS")
