"""PKCS#11 key custody (a real HSM in production, SoftHSM2 in tests).

- Service keys (CA, OCSP, TSA) are token objects: sensitive, never extractable, found by label.
- Owner keys are generated in the token as session objects, exported wrapped under a
  token-resident AES key-encryption key (CKM_AES_KEY_WRAP_PAD), and the wrapped blob is stored
  in the database. A signature unwraps the blob into a session object (sensitive, not
  extractable, sign only) inside the token.
- The token itself enforces that, for everyone: the KEK carries a CKA_UNWRAP_TEMPLATE
  (:data:`OWNER_KEY_UNWRAP_TEMPLATE`), so whoever else holds the PIN and a blob can unwrap it
  only as a sensitive, non-extractable session key that signs, never read it out. The KEK is
  itself sensitive, never extractable, not modifiable and not copyable. A KEK made before
  (without the template) is refused at start-up (``KEK_UNWRAP_TEMPLATE_MISSING``); replace it as
  services/keys/README.md says, with the old label in ``previous_kek_labels`` meanwhile.
- Owner keys are made with CKA_WRAP_WITH_TRUSTED when the KEK is CKA_TRUSTED (only the token's
  security officer can set that; SoftHSM2 hides a private KEK from the SO, so there it stays
  false): then no other key of the token can wrap them.
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
import ctypes
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from egov_common.errors import FailedPrecondition
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.attributes import AttributeMapper
from pkcs11.constants import DEFAULT
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_named_curve_parameters,
)
from pkcs11.util.rsa import encode_rsa_public_key

from egov_keys.domain.algorithms import HashAlgorithm, KeyAlgorithm, SignatureScheme
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole

__all__ = ["OWNER_KEY_UNWRAP_TEMPLATE", "Pkcs11Custody"]

log = logging.getLogger("egov.keys.pkcs11")

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
#: The KEK's CKA_UNWRAP_TEMPLATE (PKCS#11 v2.40, section 4.8): what any key it unwraps must be,
#: whoever asks. A private key, a session object, private, sensitive, never extractable; it
#: signs, and neither decrypts, unwraps nor derives. The token refuses an unwrap whose template
#: says otherwise (or leaves one of these out: SoftHSM2 answers CKR_TEMPLATE_INCONSISTENT).
OWNER_KEY_UNWRAP_TEMPLATE: Mapping[Attribute, Any] = {
    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
    Attribute.TOKEN: False,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
# Our own unwraps ask for exactly that. Attributes that do not apply to private keys are dropped
# from python-pkcs11's default template (SoftHSM2 rejects them).
_UNWRAP_TEMPLATE: dict[Attribute, Any] = {
    Attribute.ENCRYPT: DEFAULT,
    Attribute.VERIFY: DEFAULT,
    Attribute.WRAP: DEFAULT,
    **{a: v for a, v in OWNER_KEY_UNWRAP_TEMPLATE.items() if a is not Attribute.CLASS},
}
# What the start-up check asks for: the same key, readable. A KEK that allows it is refused.
_EXTRACTABLE_UNWRAP: dict[Attribute, Any] = {
    **_UNWRAP_TEMPLATE,
    Attribute.SENSITIVE: False,
    Attribute.EXTRACTABLE: True,
}


class _CkAttribute(ctypes.Structure):
    """CK_ATTRIBUTE (pkcs11t.h): type, pValue, ulValueLen."""

    _fields_ = [
        ("type", ctypes.c_ulong),
        ("pValue", ctypes.c_void_p),
        ("ulValueLen", ctypes.c_ulong),
    ]


class _TemplateAttributeMapper(AttributeMapper):
    """python-pkcs11's attribute mapper, able to write CKA_UNWRAP_TEMPLATE: an attribute whose
    value is an array of CK_ATTRIBUTE (python-pkcs11 0.10 packs plain values only). The arrays
    and the values they point at are kept until :meth:`release`, after the call that used
    them."""

    def __init__(self) -> None:
        super().__init__()
        self._kept: list[Any] = []
        self.register_handler(Attribute.UNWRAP_TEMPLATE, self._pack_template, bytes)

    def _pack_template(self, template: Mapping[Attribute, Any]) -> bytes:
        array = (_CkAttribute * len(template))()
        for entry, (attribute, value) in zip(array, template.items(), strict=True):
            packed = self.pack_attribute(attribute, value)
            buffer = ctypes.create_string_buffer(packed, len(packed))
            self._kept.append(buffer)
            entry.type = int(attribute)
            entry.pValue = ctypes.addressof(buffer)
            entry.ulValueLen = len(packed)
        self._kept.append(array)
        return ctypes.string_at(ctypes.addressof(array), ctypes.sizeof(array))

    def release(self) -> None:
        self._kept.clear()


class Pkcs11Custody:
    """Custody in a PKCS#11 token. ``kek_label`` names the token-resident wrapping key."""

    def __init__(
        self,
        module: str,
        token_label: str,
        user_pin: str,
        kek_label: str,
        *,
        previous_kek_labels: Sequence[str] = (),
        unwrapped_key_seconds: float = 30.0,
        unwrapped_key_limit: int = 1024,
        monotonic: Any = time.monotonic,
    ) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = user_pin
        self._kek_label = kek_label
        # KEKs replaced by kek_label: they still unwrap the blobs they wrapped, never wrap.
        self._previous_kek_labels = tuple(previous_kek_labels)
        self._mapper = _TemplateAttributeMapper()
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
            self._session = token.open(user_pin=self._pin, rw=True, attribute_mapper=self._mapper)
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
        """Create the token-resident wrapping key if the token has none (bootstrap), with its
        unwrap template; then :meth:`check_kek`."""
        with self._lock:
            session = self._open()
            try:
                session.get_key(label=self._kek_label, key_type=KeyType.AES)
            except pkcs11.NoSuchKey:
                try:
                    session.generate_key(
                        KeyType.AES,
                        256,
                        label=self._kek_label,
                        store=True,
                        capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                        template={
                            Attribute.SENSITIVE: True,
                            Attribute.EXTRACTABLE: False,
                            Attribute.MODIFIABLE: False,
                            Attribute.COPYABLE: False,
                            Attribute.UNWRAP_TEMPLATE: OWNER_KEY_UNWRAP_TEMPLATE,
                        },
                    )
                finally:
                    self._mapper.release()
        self.check_kek()

    def check_kek(self) -> None:
        """Refuse a KEK that would let an owner key out of the token.

        The check asks the token: a throwaway key wrapped under the KEK is unwrapped as
        extractable and not sensitive. A token that does so has no unwrap template on the KEK
        (one made before the template, or by hand): ``FailedPrecondition``
        (``KEK_UNWRAP_TEMPLATE_MISSING``), and the service does not start. No KEK yet is no
        refusal (bootstrap makes it). KEKs in ``previous_kek_labels`` only unwrap, with our own
        strict template: they are reported in the log, not refused.
        """
        with self._lock:
            session = self._open()
            try:
                kek = session.get_key(label=self._kek_label, key_type=KeyType.AES)
            except pkcs11.NoSuchKey:
                return
            leaks = _lets_keys_out(session, kek)
            for label in self._previous_kek_labels:
                try:
                    session.get_key(label=label, key_type=KeyType.AES)
                except pkcs11.NoSuchKey:
                    log.warning("a previous KEK is not in the token", extra={"kek_label": label})
                    continue
                log.warning(
                    "owner keys wrapped under a previous KEK still open: renew or revoke their "
                    "credentials, then drop it from PKCS11_PREVIOUS_KEK_LABELS",
                    extra={"kek_label": label},
                )
        if leaks:
            raise FailedPrecondition(
                "KEK_UNWRAP_TEMPLATE_MISSING",
                f"the KEK {self._kek_label!r} lets a wrapped owner key be unwrapped as "
                "extractable (it has no unwrap template): make a new KEK and keep this one as "
                "a previous KEK label (services/keys/README.md, 'Replacing a PKCS#11 KEK')",
            )

    def _kek(self, session: Any, label: str | None = None) -> Any:
        label = label or self._kek_label
        kek = self._resident.get("\0kek:" + label)
        if kek is None:
            kek = session.get_key(label=label, key_type=KeyType.AES)
            self._resident["\0kek:" + label] = kek
        return kek

    def generate(self, key_id: str, algorithm: KeyAlgorithm, role: KeyRole) -> KeyReference:
        resident = role is KeyRole.SERVICE
        private_template: dict[Attribute, Any] = {
            Attribute.SENSITIVE: True,
            # Owner keys must leave the token once, wrapped; service keys never.
            Attribute.EXTRACTABLE: not resident,
            Attribute.SIGN: True,
            # What the KEK's unwrap template makes of it again: a signing key only.
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        with self._lock:
            session = self._open()
            if not resident and _is_trusted(self._kek(session)):
                # Then only a trusted key (the KEK) can wrap it, and the attribute stays set.
                private_template[Attribute.WRAP_WITH_TRUSTED] = True
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
        """The owner key of ``key.blob`` as a session object: under the current KEK, else
        (a blob wrapped before the KEK was replaced) under a previous one. AES key wrap checks
        integrity, so a wrong KEK fails rather than yield another key."""
        first: pkcs11.PKCS11Error | None = None
        for label in (self._kek_label, *self._previous_kek_labels):
            try:
                return self._kek(session, label).unwrap_key(
                    ObjectClass.PRIVATE_KEY,
                    key_type,
                    key.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD,
                    store=False,
                    capabilities=MechanismFlag.SIGN,
                    template=_UNWRAP_TEMPLATE,
                )
            except pkcs11.PKCS11Error as exc:
                first = first or exc
        assert first is not None
        raise first

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


def _is_trusted(kek: Any) -> bool:
    """CKA_TRUSTED of the KEK (a token that does not report it: not trusted)."""
    try:
        return bool(kek[Attribute.TRUSTED])
    except pkcs11.PKCS11Error:
        return False


def _lets_keys_out(session: Any, kek: Any) -> bool:
    """Whether ``kek`` unwraps a key as extractable and not sensitive (a throwaway P-256 key,
    destroyed either way)."""
    params = session.create_domain_parameters(
        KeyType.EC,
        {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        local=True,
    )
    pub, priv = params.generate_keypair(
        store=False,
        private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True},
    )
    try:
        blob = kek.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        try:
            unwrapped = kek.unwrap_key(
                ObjectClass.PRIVATE_KEY,
                KeyType.EC,
                blob,
                mechanism=Mechanism.AES_KEY_WRAP_PAD,
                store=False,
                capabilities=MechanismFlag.SIGN,
                template=_EXTRACTABLE_UNWRAP,
            )
        except pkcs11.PKCS11Error:
            return False  # refused, as the unwrap template says
        _destroy(unwrapped)
        return True
    finally:
        _destroy(priv)
        _destroy(pub)


def _destroy(handle: Any) -> None:
    with contextlib.suppress(pkcs11.PKCS11Error):  # the session is gone: so is its object
        handle.destroy()
