"""Sign X.509 structures with a key only custody can use.

``cryptography``'s builders want a private key object, which an HSM never hands out. We build
with a throwaway key of the same type (so the signature AlgorithmIdentifier is right), sign the
to-be-signed bytes through custody, and swap the signature value in with ``asn1crypto``. The
result is verified against the issuer's public key before it is returned.
"""

from __future__ import annotations

import datetime as dt
import functools

from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from egov_keys.domain.algorithms import KeyAlgorithm, verify_digest_signature
from egov_keys.domain.custody import KeyCustody, KeyReference

__all__ = ["sign_certificate", "sign_crl", "sign_ocsp_response"]

_DER = Encoding.DER


@functools.cache
def _throwaway(algorithm: KeyAlgorithm) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    # Signs nothing that is ever published: its signature is replaced before anyone sees it.
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signature(custody: KeyCustody, key: KeyReference, tbs: bytes) -> bytes:
    hash_algorithm = key.algorithm.natural_hash
    digest = hash_algorithm.digest(tbs)
    scheme = key.algorithm.default_scheme
    signature = custody.sign_digest(key, digest, hash_algorithm, scheme)
    # A faulty signature must never be published (RFC 5280 relying parties would reject it, and
    # a faulty RSA signature can leak the key).
    verify_digest_signature(key.public_key(), signature, digest, hash_algorithm, scheme)
    return signature


def sign_certificate(
    builder: x509.CertificateBuilder, custody: KeyCustody, issuer_key: KeyReference
) -> x509.Certificate:
    draft = builder.sign(
        _throwaway(issuer_key.algorithm), issuer_key.algorithm.natural_hash.hashes()
    )
    signature = _signature(custody, issuer_key, draft.tbs_certificate_bytes)
    cert = asn1_x509.Certificate.load(draft.public_bytes(_DER))
    cert["signature_value"] = asn1_core.OctetBitString(signature)
    return x509.load_der_x509_certificate(cert.dump(force=True))


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, custody: KeyCustody, issuer_key: KeyReference
) -> x509.CertificateRevocationList:
    draft = builder.sign(
        _throwaway(issuer_key.algorithm), issuer_key.algorithm.natural_hash.hashes()
    )
    signature = _signature(custody, issuer_key, draft.tbs_certlist_bytes)
    crl = asn1_crl.CertificateList.load(draft.public_bytes(_DER))
    crl["signature"] = asn1_core.OctetBitString(signature)
    return x509.load_der_x509_crl(crl.dump(force=True))


@functools.cache
def _throwaway_certificate(algorithm: KeyAlgorithm) -> x509.Certificate:
    key = _throwaway(algorithm)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "draft")])
    now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, algorithm.natural_hash.hashes())
    )


def sign_ocsp_response(
    builder: ocsp.OCSPResponseBuilder,
    custody: KeyCustody,
    responder_key: KeyReference,
    responder_certificate: x509.Certificate,
) -> bytes:
    """The DER OCSPResponse (successful), responder id by key hash (RFC 6960 4.2.1), with the
    responder certificate, signed by the responder key. ``builder`` must not set a responder
    id or certificates yet."""
    algorithm = responder_key.algorithm
    draft = builder.responder_id(
        ocsp.OCSPResponderEncoding.HASH, _throwaway_certificate(algorithm)
    ).sign(_throwaway(algorithm), algorithm.natural_hash.hashes())
    response = asn1_ocsp.OCSPResponse.load(draft.public_bytes(_DER))
    basic = response["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    responder_der = responder_certificate.public_bytes(_DER)
    responder = asn1_x509.Certificate.load(responder_der)
    tbs["responder_id"] = asn1_ocsp.ResponderId(name="by_key", value=responder.public_key.sha1)
    tbs_der = tbs.dump(force=True)
    signature = _signature(custody, responder_key, tbs_der)
    # Assembled by hand: re-encoding the whole structure with asn1crypto (force=True) costs
    # more than the signature itself. RFC 6960 4.2.1 BasicOCSPResponse and OCSPResponse.
    basic_der = _tlv(
        0x30,
        tbs_der
        + basic["signature_algorithm"].dump()
        + _tlv(0x03, b"\x00" + signature)
        + _tlv(0xA0, _tlv(0x30, responder_der)),
    )
    response_bytes = _tlv(
        0x30, asn1_core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.1").dump() + _tlv(0x04, basic_der)
    )
    return _tlv(0x30, b"\x0a\x01\x00" + _tlv(0xA0, response_bytes))


def _tlv(tag: int, content: bytes) -> bytes:
    """DER tag-length-value (definite length)."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content
