"""PKCS#11 key custody (a real HSM in production, SoftHSM2 in tests).

- Service keys (CA, OCSP, TSA) are token objects: sensitive, never extractable, found by label.
- Owner keys are generated in the token as session objects, exported wrapped under a
  token-resident AES key-encryption key (CKM_AES_KEY_WRAP_PAD), and the wrapped blob is stored
  in the database. A signature unwraps the blob into a session object (sensitive, not
  extractable, sign only) inside the token.
- Unwrapping costs several times the signature itself, so the session object is kept for
  ``unwrapped_key_seconds`` (default 30 s, at most ``unwrapped_key_limit`` keys) and then
  destroyed: the usual HSM session-key cache. It changes nothing about sole control: every
  SignHash still needs its own SAD, spent in the database before the custody is asked to sign,
  and the key never leaves the token. 0 seconds unwraps and destroys per signature.

python-pkcs11 is not thread-safe: every token call runs under one lock per process; the
service scales with processes. PKCS#11 libraries (SoftHSM2 among them) do not survive a fork:
a process opens its session on first use, and :meth:`Pkcs11Custody.close` closes it and
finalizes the library, so a parent that checked its keys can fork workers that each initialise
the library and log in on their own.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.constants import DEFAULT
from pkcs11.util.ec import (
    encode_ec_public_key,
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

    def __init__(
        self,
        module: str,
        token_label: str,
        user_pin: str,
        kek_label: str,
        *,
        unwrapped_key_seconds: float = 30.0,
        unwrapped_key_limit: int = 1024,
        monotonic: Any = time.monotonic,
    ) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = user_pin
        self._kek_label = kek_label
        self._lock = threading.Lock()
        self._lib: Any = None
        self._session: Any = None
        self._pid = 0
        self._resident: dict[str, Any] = {}
        self._unwrapped_seconds = unwrapped_key_seconds
        self._unwrapped_limit = unwrapped_key_limit
        self._monotonic = monotonic
        # (key id, wrapped blob) -> (destroy at, session object); oldest first.
        self._unwrapped: OrderedDict[tuple[str, bytes], tuple[float, Any]] = OrderedDict()

    @property
    def backend(self) -> CustodyBackend:
        return CustodyBackend.PKCS11

    # Opened lazily, in the process that signs: a forked worker opens its own.
    def _open(self) -> Any:
        if self._session is None:
            self._lib = pkcs11.lib(self._module)
            token = self._lib.get_token(token_label=self._token_label)
            self._session = token.open(user_pin=self._pin, rw=True)
            self._pid = os.getpid()
        elif self._pid != os.getpid():
            # The session (and the library's state) belong to the process that opened them.
            raise RuntimeError("a PKCS#11 session cannot be used after fork; close it first")
        return self._session

    def close(self) -> None:
        """Destroy the unwrapped keys, close the session and finalize the library."""
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                for _, handle in self._unwrapped.values():
                    _destroy(handle)
                self._session.close()
                if self._lib is not None:
                    self._lib.finalize()
            self._unwrapped.clear()
            self._resident.clear()
            self._session = None
            self._lib = None

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
            now = self._monotonic()
            self._expire(now)
            cache_key = (key.key_id, key.blob)
            cached = self._unwrapped.get(cache_key)
            priv = cached[1] if cached is not None else self._unwrap(session, key, key_type)
            keep = cached is not None or self._unwrapped_seconds > 0
            try:
                signature = self._sign(priv, digest, hash_algorithm, scheme)
            except BaseException:
                keep = False  # a key that failed to sign is not kept
                raise
            finally:
                if not keep:
                    self._unwrapped.pop(cache_key, None)
                    _destroy(priv)
            if cached is None:
                self._unwrapped[cache_key] = (now + self._unwrapped_seconds, priv)
                while len(self._unwrapped) > self._unwrapped_limit:
                    _destroy(self._unwrapped.popitem(last=False)[1][1])
            return signature

    def sign_digests(
        self,
        key: KeyReference,
        digests: Sequence[bytes],
        hash_algorithm: HashAlgorithm,
        scheme: SignatureScheme,
    ) -> list[bytes]:
        return [self.sign_digest(key, digest, hash_algorithm, scheme) for digest in digests]

    def _unwrap(self, session: Any, key: KeyReference, key_type: KeyType) -> Any:
        return self._kek(session).unwrap_key(
            ObjectClass.PRIVATE_KEY,
            key_type,
            key.blob,
            mechanism=Mechanism.AES_KEY_WRAP_PAD,
            store=False,
            capabilities=MechanismFlag.SIGN,
            template=_UNWRAP_TEMPLATE,
        )

    def _expire(self, now: float) -> None:
        """Destroy the unwrapped keys whose time is up (the oldest come first)."""
        while self._unwrapped:
            first = next(iter(self._unwrapped.values()))
            if first[0] > now:
                return
            _destroy(self._unwrapped.popitem(last=False)[1][1])

    def unwrapped_keys(self) -> int:
        """How many owner keys are unwrapped in the session now (after expiring old ones)."""
        with self._lock:
            self._expire(self._monotonic())
            return len(self._unwrapped)

    @staticmethod
    def _sign(
        priv: Any, digest: bytes, hash_algorithm: HashAlgorithm, scheme: SignatureScheme
    ) -> bytes:
        if scheme is SignatureScheme.ECDSA:
            return _der_ecdsa(bytes(priv.sign(digest, mechanism=Mechanism.ECDSA)))
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


def _der_ecdsa(raw: bytes) -> bytes:
    """PKCS#11's ECDSA signature (r || s, each the curve's size) as DER ``(r, s)``."""
    half = len(raw) // 2
    if len(raw) % 2 or not half:
        raise ValueError("malformed ECDSA signature from the token")
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def _destroy(handle: Any) -> None:
    with contextlib.suppress(pkcs11.PKCS11Error):  # the session is gone: so is its object
        handle.destroy()
