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
    throwaway = _throwaway_certificate(algorithm)
    draft = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, throwaway).sign(
        _throwaway(algorithm), algorithm.natural_hash.hashes()
    )
    # tbsResponseData starts with the ResponderID: byKey [2] EXPLICIT OCTET STRING (SHA-1 of
    # the key, 20 bytes). The throwaway key's hash is swapped for the responder's, same length.
    tbs = draft.tbs_response_bytes
    start = _content_offset(tbs)
    drafted, responder_id = _responder_id(throwaway), _responder_id(responder_certificate)
    if tbs[start : start + len(drafted)] != drafted:  # pragma: no cover - cryptography's layout
        raise ValueError("unexpected tbsResponseData layout")
    tbs_der = tbs[:start] + responder_id + tbs[start + len(drafted) :]
    signature = _signature(custody, responder_key, tbs_der)
    # RFC 6960 4.2.1 BasicOCSPResponse and OCSPResponse, assembled as DER.
    basic_der = _tlv(
        0x30,
        tbs_der
        + _signature_algorithm_der(algorithm)
        + _tlv(0x03, b"\x00" + signature)
        + _tlv(0xA0, _tlv(0x30, _certificate_der(responder_certificate))),
    )
    response_bytes = _tlv(0x30, _BASIC_OCSP_OID + _tlv(0x04, basic_der))
    return _tlv(0x30, b"\x0a\x01\x00" + _tlv(0xA0, response_bytes))


_BASIC_OCSP_OID = asn1_core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.1").dump()


@functools.lru_cache(maxsize=64)
def _responder_id(certificate: x509.Certificate) -> bytes:
    """ResponderID byKey of ``certificate`` as DER (computed once per certificate)."""
    key_hash = asn1_x509.Certificate.load(certificate.public_bytes(_DER)).public_key.sha1
    return _tlv(0xA2, _tlv(0x04, key_hash))


@functools.lru_cache(maxsize=64)
def _certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(_DER)


@functools.cache
def _signature_algorithm_der(algorithm: KeyAlgorithm) -> bytes:
    """The BasicOCSPResponse signatureAlgorithm that cryptography writes for ``algorithm``."""
    throwaway = _throwaway_certificate(algorithm)
    draft = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            throwaway,
            throwaway,
            algorithm.natural_hash.hashes(),
            ocsp.OCSPCertStatus.GOOD,
            dt.datetime(2000, 1, 1),
            None,
            None,
            None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, throwaway)
        .sign(_throwaway(algorithm), algorithm.natural_hash.hashes())
    )
    basic = asn1_ocsp.OCSPResponse.load(draft.public_bytes(_DER))["response_bytes"]["response"]
    return bytes(basic.parsed["signature_algorithm"].dump())


def _content_offset(der: bytes) -> int:
    """Where the contents of the DER TLV at the start of ``der`` begin."""
    if der[1] < 0x80:
        return 2
    return 2 + (der[1] & 0x7F)


def _tlv(tag: int, content: bytes) -> bytes:
    """DER tag-length-value (definite length)."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content
