"""Key, digest and signature algorithms the keys service accepts."""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = ["HashAlgorithm", "KeyAlgorithm", "SignatureScheme", "verify_digest_signature"]


class KeyAlgorithm(enum.StrEnum):
    ECDSA_P256 = "ECDSA_P256"
    ECDSA_P384 = "ECDSA_P384"
    RSA_3072 = "RSA_3072"

    @property
    def is_ec(self) -> bool:
        return self is not KeyAlgorithm.RSA_3072

    @property
    def curve_name(self) -> str:
        return {"ECDSA_P256": "secp256r1", "ECDSA_P384": "secp384r1"}[self.value]

    @property
    def natural_hash(self) -> HashAlgorithm:
        """The digest this key signs certificates and CRLs with."""
        return HashAlgorithm.SHA384 if self is KeyAlgorithm.ECDSA_P384 else HashAlgorithm.SHA256

    @property
    def default_scheme(self) -> SignatureScheme:
        return SignatureScheme.ECDSA if self.is_ec else SignatureScheme.RSA_PKCS1V15

    def allows(self, scheme: SignatureScheme) -> bool:
        if self.is_ec:
            return scheme is SignatureScheme.ECDSA
        return scheme in (SignatureScheme.RSA_PKCS1V15, SignatureScheme.RSA_PSS)


class HashAlgorithm(enum.StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"

    @property
    def digest_size(self) -> int:
        return {"SHA256": 32, "SHA384": 48, "SHA512": 64}[self.value]

    def hashes(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
        if self is HashAlgorithm.SHA256:
            return hashes.SHA256()
        if self is HashAlgorithm.SHA384:
            return hashes.SHA384()
        return hashes.SHA512()

    def digest(self, data: bytes) -> bytes:
        h = hashes.Hash(self.hashes())
        h.update(data)
        return h.finalize()


class SignatureScheme(enum.StrEnum):
    ECDSA = "ECDSA"
    RSA_PKCS1V15 = "RSA_PKCS1V15"
    RSA_PSS = "RSA_PSS"


def verify_digest_signature(
    public_key: PublicKeyTypes,
    signature: bytes,
    digest: bytes,
    hash_algorithm: HashAlgorithm,
    scheme: SignatureScheme,
) -> None:
    """Raise ``cryptography.exceptions.InvalidSignature`` unless ``signature`` is valid."""
    prehashed = utils.Prehashed(hash_algorithm.hashes())
    if isinstance(public_key, ec.EllipticCurvePublicKey) and scheme is SignatureScheme.ECDSA:
        public_key.verify(signature, digest, ec.ECDSA(prehashed))
    elif isinstance(public_key, rsa.RSAPublicKey) and scheme is SignatureScheme.RSA_PKCS1V15:
        public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
    elif isinstance(public_key, rsa.RSAPublicKey) and scheme is SignatureScheme.RSA_PSS:
        pss = padding.PSS(padding.MGF1(hash_algorithm.hashes()), hash_algorithm.digest_size)
        public_key.verify(signature, digest, pss, prehashed)
    else:
        raise TypeError("signature scheme does not fit the key")
