"""CRLs (RFC 5280 section 5) and OCSP responses (RFC 6960) for our issuing CAs."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from egov_keys.domain.custody import KeyCustody
from egov_keys.domain.external_signing import sign_crl, sign_ocsp_response
from egov_keys.domain.model import CertificateStatus, RevocationReason
from egov_keys.domain.pki import Authority

__all__ = [
    "CertificateState",
    "OcspAnswer",
    "build_crl",
    "ocsp_error",
    "respond_ocsp",
    "x509_reason",
]

_REASONS = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CA_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
}


def x509_reason(reason: RevocationReason | None) -> x509.ReasonFlags:
    return _REASONS.get(reason or RevocationReason.UNSPECIFIED, x509.ReasonFlags.unspecified)


@dataclass(frozen=True, slots=True)
class CertificateState:
    serial: int
    status: CertificateStatus
    revoked_at: dt.datetime | None
    reason: RevocationReason | None


def build_crl(
    custody: KeyCustody,
    ca: Authority,
    revoked: Sequence[CertificateState],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    for entry in revoked:
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at or this_update)
        )
        if entry.reason is not None and entry.reason is not RevocationReason.UNSPECIFIED:
            # RFC 5280 5.3.1: omit the extension rather than write "unspecified".
            revoked_cert = revoked_cert.add_extension(
                x509.CRLReason(x509_reason(entry.reason)), critical=False
            )
        builder = builder.add_revoked_certificate(revoked_cert.build())
    return sign_crl(builder, custody, ca.key)


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    der: bytes
    #: "good", "revoked", "unknown" or an error status name, for metrics and the audit trail.
    status: str


def ocsp_error(status: ocsp.OCSPResponseStatus) -> OcspAnswer:
    return OcspAnswer(
        ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
            serialization.Encoding.DER
        ),
        status.name.lower(),
    )


def respond_ocsp(
    request_der: bytes,
    custody_of: Callable[[Authority], KeyCustody],
    cas: Sequence[Authority],
    responders: dict[str, Authority],
    lookup: Callable[[str, int], CertificateState | None],
    now: dt.datetime,
    validity: dt.timedelta,
    withdrawn: Collection[str] = (),
) -> OcspAnswer:
    """Answer one RFC 6960 request (cryptography parses single-request OCSP only).

    The issuer is matched by name and key hash under the request's hash algorithm; a serial we
    never issued under a CA we run is ``unknown``; a CA we do not run gets ``unauthorized``; a
    CA whose responder is ``withdrawn`` (its certificate revoked, a new one not yet in use)
    gets ``tryLater``: a response signed with a revoked responder's key proves nothing.
    ``custody_of`` gives the custody that holds a responder's key (responders made at different
    times may live in different backends).
    """
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        hash_algorithm = request.hash_algorithm
        extensions = request.extensions  # parsed on access: a repeated extension fails here
    except Exception:  # any parse failure is the client's problem, answered per RFC 6960
        return ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    if not isinstance(hash_algorithm, (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)):
        return ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    ca = None
    for candidate in cas:
        if _key_hash(candidate.certificate, hash_algorithm) == request.issuer_key_hash and (
            _name_hash(candidate.certificate, hash_algorithm) == request.issuer_name_hash
        ):
            ca = candidate
            break
    if ca is not None and ca.name in withdrawn:
        return ocsp_error(ocsp.OCSPResponseStatus.TRY_LATER)
    if ca is None or ca.name not in responders:
        return ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    responder = responders[ca.name]
    state = lookup(ca.name, request.serial_number)
    this_update = now.replace(microsecond=0)
    if state is None:
        cert_status, revoked_at, reason, label = ocsp.OCSPCertStatus.UNKNOWN, None, None, "unknown"
    elif state.status is CertificateStatus.REVOKED:
        cert_status = ocsp.OCSPCertStatus.REVOKED
        revoked_at = (state.revoked_at or this_update).replace(microsecond=0)
        reason = x509_reason(state.reason)
        label = "revoked"
    else:
        cert_status, revoked_at, reason, label = ocsp.OCSPCertStatus.GOOD, None, None, "good"
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash,
        issuer_key_hash=request.issuer_key_hash,
        serial_number=request.serial_number,
        algorithm=hash_algorithm,
        cert_status=cert_status,
        this_update=this_update,
        next_update=this_update + validity,
        revocation_time=revoked_at,
        revocation_reason=reason,
    )
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            # RFC 8954: echo the client's nonce (1 to 32 octets).
            if 1 <= len(extension.value.nonce) <= 32:
                builder = builder.add_extension(extension.value, critical=False)
            else:
                return ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    der = sign_ocsp_response(builder, custody_of(responder), responder.key, responder.certificate)
    return OcspAnswer(der, label)


def _name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    return _issuer_hashes(cert, algorithm.name)[0]


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    return _issuer_hashes(cert, algorithm.name)[1]


@functools.lru_cache(maxsize=256)
def _issuer_hashes(cert: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA certificate under a hash algorithm, computed once
    per certificate and algorithm (RFC 6960 4.1.1: the key hash excludes the BIT STRING's tag,
    length and unused-bits octet)."""
    chosen = _HASHES[algorithm]
    name = hashes.Hash(chosen)
    name.update(cert.subject.public_bytes())
    spki = asn1_keys.PublicKeyInfo.load(
        cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    key = hashes.Hash(chosen)
    key.update(bytes(spki["public_key"].contents[1:]))
    return name.finalize(), key.finalize()


# SHA-1 is what most clients put in a CertID (RFC 6960 4.1.1; RFC 5019 profile).
_HASHES: dict[str, hashes.HashAlgorithm] = {
    h.name: h
    for h in (hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512())  # noqa: S303
}
