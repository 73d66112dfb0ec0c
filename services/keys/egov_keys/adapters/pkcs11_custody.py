"""PKCS#11 key custody (a real HSM in production, SoftHSM2 in tests).

- Service keys (CA, OCSP, TSA) are token objects: sensitive, never extractable, found by label.
- Owner keys are generated in the token as session objects, exported wrapped under a
  token-resident AES key-encryption key (CKM_AES_KEY_WRAP_PAD), and the wrapped blob is stored
  in the database. Each signature unwraps the blob into a session object, signs, destroys it.

python-pkcs11 is not thread-safe: every token call runs under one lock per process; the
service scales with processes (each opens its own session).
"""

from __future__ import annotations

import threading
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.constants import DEFAULT
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)
from pkcs11.util.rsa import encode_rsa_public_key

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole

__all__ = ["Pkcs11Custody"]

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1) for CKM_RSA_PKCS over a digest.
_DIGEST_INFO = {
    HashAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    HashAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    HashAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_PARAMS = {
    HashAlgorithm.SHA256: (Mechanism.SHA256, pkcs11.MGF.SHA256, 32),
    HashAlgorithm.SHA384: (Mechanism.SHA384, pkcs11.MGF.SHA384, 48),
    HashAlgorithm.SHA512: (Mechanism.SHA512, pkcs11.MGF.SHA512, 64),
}
# Unwrapped owner keys may sign and nothing else; attributes that do not apply to private keys
# are dropped from python-pkcs11's default template (SoftHSM2 rejects them).
_UNWRAP_TEMPLATE: dict[Attribute, Any] = {
    Attribute.ENCRYPT: DEFAULT,
    Attribute.VERIFY: DEFAULT,
    Attribute.WRAP: DEFAULT,
    Attribute.DERIVE: DEFAULT,
    Attribute.DECRYPT: DEFAULT,
    Attribute.UNWRAP: DEFAULT,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
}


class Pkcs11Custody:
    """Custody in a PKCS#11 token. ``kek_label`` names the token-resident wrapping key."""

    def __init__(self, module: str, token_label: str, user_pin: str, kek_label: str) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = user_pin
        self._kek_label = kek_label
        self._lock = threading.Lock()
        self._session: Any = None
        self._resident: dict[str, Any] = {}

    @property
    def backend(self) -> CustodyBackend:
        return CustodyBackend.PKCS11

    # Opened lazily so a process that forks before its first signature does not share a session.
    def _open(self) -> Any:
        if self._session is None:
            lib = pkcs11.lib(self._module)
            token = lib.get_token(token_label=self._token_label)
            self._session = token.open(user_pin=self._pin, rw=True)
        return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
                self._resident.clear()

    def ensure_kek(self) -> None:
        """Create the token-resident wrapping key if the token has none (bootstrap only)."""
        with self._lock:
            session = self._open()
            try:
                session.get_key(label=self._kek_label, key_type=KeyType.AES)
            except pkcs11.NoSuchKey:
                session.generate_key(
                    KeyType.AES,
                    256,
                    label=self._kek_label,
                    store=True,
                    capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                    template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
                )

    def _kek(self, session: Any) -> Any:
        kek = self._resident.get("\0kek")
        if kek is None:
            kek = session.get_key(label=self._kek_label, key_type=KeyType.AES)
            self._resident["\0kek"] = kek
        return kek

    def generate(self, key_id: str, algorithm: KeyAlgorithm, role: KeyRole) -> KeyReference:
        resident = role is KeyRole.SERVICE
        private_template: dict[Attribute, Any] = {
            Attribute.SENSITIVE: True,
            # Owner keys must leave the token once, wrapped; service keys never.
            Attribute.EXTRACTABLE: not resident,
            Attribute.SIGN: True,
        }
        with self._lock:
            session = self._open()
            label = key_id if resident else None
            if algorithm.is_ec:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(algorithm.curve_name)},
                    local=True,
                )
                pub, priv = params.generate_keypair(
                    store=resident, label=label, private_template=private_template
                )
                public_der = encode_ec_public_key(pub)
            else:
                pub, priv = session.generate_keypair(
                    KeyType.RSA,
                    3072,
                    store=resident,
                    label=label,
                    private_template=private_template,
                )
                public_der = encode_rsa_public_key(pub)
            if resident:
                blob = b""
            else:
                blob = self._kek(session).wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_PAD)
                priv.destroy()
                pub.destroy()
        return KeyReference(key_id, CustodyBackend.PKCS11, algorithm, role, public_der, blob)

    def sign_digest(
        self,
        key: KeyReference,
        digest: bytes,
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> bytes:
        if key.backend is not CustodyBackend.PKCS11:
            raise ValueError("not a PKCS#11 key")
        if len(digest) != hash_algorithm.digest_size:
            raise ValueError("digest length does not match the hash algorithm")
        if not key.algorithm.allows(scheme):
            raise ValueError("signature scheme does not fit the key")
        key_type = KeyType.EC if key.algorithm.is_ec else KeyType.RSA
        with self._lock:
            session = self._open()
            if key.role is KeyRole.SERVICE:
                priv = self._resident.get(key.key_id)
                if priv is None:
                    priv = session.get_key(
                        object_class=ObjectClass.PRIVATE_KEY, key_type=key_type, label=key.key_id
                    )
                    self._resident[key.key_id] = priv
                return self._sign(priv, digest, hash_algorithm, scheme)
            priv = self._kek(session).unwrap_key(
                ObjectClass.PRIVATE_KEY,
                key_type,
                key.blob,
                mechanism=Mechanism.AES_KEY_WRAP_PAD,
                store=False,
                capabilities=MechanismFlag.SIGN,
                template=_UNWRAP_TEMPLATE,
            )
            try:
                return self._sign(priv, digest, hash_algorithm, scheme)
            finally:
                priv.destroy()

    @staticmethod
    def _sign(
        priv: Any, digest: bytes, hash_algorithm: HashAlgorithm, scheme: SignatureScheme
    ) -> bytes:
        if scheme is SignatureScheme.ECDSA:
            return bytes(encode_ecdsa_signature(priv.sign(digest, mechanism=Mechanism.ECDSA)))
        if scheme is SignatureScheme.RSA_PKCS1V15:
            return bytes(
                priv.sign(_DIGEST_INFO[hash_algorithm] + digest, mechanism=Mechanism.RSA_PKCS)
            )
        return bytes(
            priv.sign(
                digest,
                mechanism=Mechanism.RSA_PKCS_PSS,
                mechanism_param=_PSS_PARAMS[hash_algorithm],
            )
        )
