"""RFC 3161 time-stamp authority: TimeStampReq in, TimeStampResp out (asn1crypto structures).

The token is a CMS SignedData over TSTInfo with the ESS signing-certificate-v2 attribute
(RFC 5816), signed by the TSA key through custody. Requests with an unknown digest, a digest of
the wrong length, a policy other than ours or extensions are rejected with the RFC's failure
info; the nonce is echoed; serial numbers are random 159-bit integers (unique across processes).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass

from asn1crypto import algos, core, tsp
from cryptography.hazmat.primitives.serialization import Encoding

from egov_keys.domain.custody import KeyCustody
from egov_keys.domain.pki import Authority

__all__ = ["TimeStampAnswer", "issue_timestamp", "unavailable"]

_TST_INFO = "1.2.840.113549.1.9.16.1.4"  # id-ct-TSTInfo
_IMPRINT_ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}


class TimeStampAnswer:
    """A TimeStampResp; for a granted one, ``record`` is what the TSA keeps of the token
    (serial, time, imprint, policy: RFC 3161 2.4.2's TSTInfo without the nonce)."""

    def __init__(
        self, der: bytes, granted: bool, serial: int | None, record: dict[str, str] | None = None
    ) -> None:
        self.der = der
        self.granted = granted
        self.serial = serial
        self.record = record or {}


def unavailable(text: str) -> TimeStampAnswer:
    """A rejection for a reason of ours, not of the request (RFC 3161 systemFailure)."""
    return _rejection("system_failure", text)


def _rejection(fail_info: str, text: str) -> TimeStampAnswer:
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": tsp.PKIFreeText([text]),
            "fail_info": tsp.PKIFailureInfo({fail_info}),
        }
    )
    # TimeStampResp with the optional timeStampToken absent (RFC 3161 section 2.4.2);
    # asn1crypto's TimeStampResp insists on the token, so the outer SEQUENCE is written here.
    return TimeStampAnswer(_tlv(0x30, status.dump()), False, None)


def issue_timestamp(
    request_der: bytes,
    custody: KeyCustody,
    tsa: Authority,
    policy_oid: str,
    now: dt.datetime,
) -> TimeStampAnswer:
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)  # nothing may trail it
        _ = request.native  # force a full parse: bad types fail here
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        digest = imprint["hashed_message"].native
    except Exception:  # malformed DER of any kind: RFC 3161 badDataFormat
        return _rejection("bad_data_format", "malformed TimeStampReq")
    if request["version"].native != "v1":
        return _rejection("bad_request", "unsupported TimeStampReq version")
    expected = _IMPRINT_ALGORITHMS.get(algorithm)
    if expected is None:
        return _rejection("bad_alg", "unsupported message imprint algorithm")
    if len(digest) != expected:
        return _rejection("bad_data_format", "message imprint length does not match algorithm")
    requested_policy = request["req_policy"].native
    if requested_policy is not None and requested_policy != policy_oid:
        return _rejection("unaccepted_policy", "only our time-stamping policy is offered")
    if request["extensions"].native:
        return _rejection("unaccepted_extension", "no request extensions are supported")

    serial = secrets.randbits(159) | 1
    nonce = request["nonce"].native
    gen_time = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii")
    fixed = _fixed_parts(tsa, policy_oid)
    # TSTInfo (RFC 3161 2.4.2) as DER: version 1, policy, the request's messageImprint as it
    # came, serial, genTime (whole seconds), accuracy 1 s, ordering omitted (DEFAULT FALSE),
    # the nonce when the request has one.
    tst_der = _tlv(
        0x30,
        b"\x02\x01\x01"
        + fixed.policy
        + imprint.dump()
        + _integer(serial)
        + _tlv(0x18, gen_time)
        + _ACCURACY_ONE_SECOND
        + (_integer(nonce) if nonce is not None else b""),
    )
    hash_algorithm = tsa.key.algorithm.natural_hash
    # Signed attributes (RFC 5652 5.3) built as DER: content-type, message-digest and the ESS
    # signing-certificate-v2 (RFC 5816; hashAlgorithm omitted: DEFAULT sha256).
    attributes = [
        _CONTENT_TYPE_TST_INFO,
        _attribute("1.2.840.113549.1.9.4", _tlv(0x04, hash_algorithm.digest(tst_der))),
        fixed.signing_certificate,
    ]
    # DER SET OF: elements in ascending order of their encodings.
    attributes_content = b"".join(sorted(attributes))
    to_sign = _tlv(0x31, attributes_content)
    scheme = tsa.key.algorithm.default_scheme
    signature = custody.sign_digest(tsa.key, hash_algorithm.digest(to_sign), hash_algorithm, scheme)
    signer_info = _tlv(
        0x30,
        b"\x02\x01\x01"  # version 1: issuerAndSerialNumber
        + fixed.issuer_and_serial
        + fixed.digest_algorithm
        + _tlv(0xA0, attributes_content)  # [0] IMPLICIT SET OF Attribute
        + fixed.signature_algorithm
        + _tlv(0x04, signature),
    )
    # SignedData, ContentInfo and TimeStampResp are assembled as DER by hand (RFC 5652 5.1,
    # RFC 3161 2.4.2): asn1crypto would re-encode the embedded certificate on every token.
    encap = _tlv(0x30, _TST_INFO_OID + _tlv(0xA0, _tlv(0x04, tst_der)))
    certificates = fixed.certificates if request["cert_req"].native else b""
    signed_data = _tlv(
        0x30,
        b"\x02\x01\x03"  # version 3
        + _tlv(0x31, fixed.digest_algorithm)
        + encap
        + certificates
        + _tlv(0x31, signer_info),
    )
    content_info = _tlv(0x30, _SIGNED_DATA_OID + _tlv(0xA0, signed_data))
    granted = _tlv(0x30, b"\x02\x01\x00")  # PKIStatusInfo { status granted }
    record = {
        "serial": f"{serial:x}",
        "gen_time": gen_time.decode("ascii"),
        "policy": policy_oid,
        "imprint_algorithm": algorithm,
        "imprint": digest.hex(),
    }
    return TimeStampAnswer(_tlv(0x30, granted + content_info), True, serial, record)


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The parts of every token that depend only on the TSA certificate, key and policy."""

    policy: bytes
    issuer_and_serial: bytes
    digest_algorithm: bytes
    signature_algorithm: bytes
    signing_certificate: bytes
    certificates: bytes


@functools.lru_cache(maxsize=16)
def _fixed_parts(tsa: Authority, policy_oid: str) -> _Fixed:
    cert_der = tsa.certificate.public_bytes(Encoding.DER)
    issuer_der = tsa.certificate.issuer.public_bytes()
    serial_der = core.Integer(tsa.certificate.serial_number).dump()
    digest_name = tsa.key.algorithm.natural_hash.value.lower()
    signature_algorithm = f"{digest_name}_{'ecdsa' if tsa.key.algorithm.is_ec else 'rsa'}"
    ess_cert_id = _tlv(
        0x30,
        _tlv(0x04, hashlib.sha256(cert_der).digest())
        + _tlv(0x30, _tlv(0x30, _tlv(0xA4, issuer_der)) + serial_der),
    )
    return _Fixed(
        policy=core.ObjectIdentifier(policy_oid).dump(),
        issuer_and_serial=_tlv(0x30, issuer_der + serial_der),
        digest_algorithm=algos.DigestAlgorithm({"algorithm": digest_name}).dump(),
        signature_algorithm=algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}).dump(),
        signing_certificate=_attribute(
            "1.2.840.113549.1.9.16.2.47", _tlv(0x30, _tlv(0x30, ess_cert_id))
        ),
        certificates=_tlv(0xA0, cert_der),
    )


def _integer(value: int) -> bytes:
    """DER INTEGER of ``value``: the shortest two's complement (a client's nonce may be
    negative)."""
    magnitude = value if value >= 0 else ~value
    return _tlv(0x02, value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True))


def _attribute(oid: str, value_der: bytes) -> bytes:
    return _tlv(0x30, core.ObjectIdentifier(oid).dump() + _tlv(0x31, value_der))


def _tlv(tag: int, content: bytes) -> bytes:
    """DER tag-length-value (definite length)."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


_TST_INFO_OID = core.ObjectIdentifier(_TST_INFO).dump()
_SIGNED_DATA_OID = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_CONTENT_TYPE_TST_INFO = _attribute("1.2.840.113549.1.9.3", _TST_INFO_OID)
_ACCURACY_ONE_SECOND = b"\x30\x03\x02\x01\x01"  # Accuracy { seconds 1 }
