"""RFC 3161 time-stamp authority: TimeStampReq in, TimeStampResp out (asn1crypto structures).

The token is a CMS SignedData over TSTInfo with the ESS signing-certificate-v2 attribute
(RFC 5816), signed by the TSA key through custody. Requests with an unknown digest, a digest of
the wrong length, a policy other than ours or extensions are rejected with the RFC's failure
info; the nonce is echoed; serial numbers are random 159-bit integers (unique across processes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding

from egov_keys.domain.custody import KeyCustody
from egov_keys.domain.pki import Authority

__all__ = ["TimeStampAnswer", "issue_timestamp"]

_IMPRINT_ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}


class TimeStampAnswer:
    def __init__(self, der: bytes, granted: bool, serial: int | None) -> None:
        self.der = der
        self.granted = granted
        self.serial = serial


def _der_sequence(content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return b"\x30" + bytes([length]) + content
    size = (length.bit_length() + 7) // 8
    return b"\x30" + bytes([0x80 | size]) + length.to_bytes(size, "big") + content


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
    return TimeStampAnswer(_der_sequence(status.dump()), False, None)


def issue_timestamp(
    request_der: bytes,
    custody: KeyCustody,
    tsa: Authority,
    policy_oid: str,
    now: dt.datetime,
) -> TimeStampAnswer:
    try:
        request = tsp.TimeStampReq.load(request_der)
        _ = request.native  # force a full parse: trailing garbage or bad types fail here
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
    tst_fields: dict[str, object] = {
        "version": "v1",
        "policy": policy_oid,
        "message_imprint": imprint,
        "serial_number": serial,
        "gen_time": core.GeneralizedTime(now.astimezone(dt.UTC).replace(microsecond=0)),
        "accuracy": tsp.Accuracy({"seconds": 1}),
        "ordering": False,
    }
    nonce = request["nonce"].native
    if nonce is not None:
        tst_fields["nonce"] = nonce
    tst_info = tsp.TSTInfo(tst_fields)
    tst_der = tst_info.dump()

    cert_der = tsa.certificate.public_bytes(Encoding.DER)
    cert = asn1_x509.Certificate.load(cert_der)
    hash_algorithm = tsa.key.algorithm.natural_hash
    digest_name = hash_algorithm.value.lower()
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [hash_algorithm.digest(tst_der)]}
            ),
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        {
                            "certs": [
                                {
                                    "hash_algorithm": {"algorithm": "sha256"},
                                    "cert_hash": hashlib.sha256(cert_der).digest(),
                                    "issuer_serial": {
                                        "issuer": [
                                            asn1_x509.GeneralName(
                                                name="directory_name", value=cert.issuer
                                            )
                                        ],
                                        "serial_number": cert.serial_number,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ),
        ]
    )
    # CMS (RFC 5652 5.4): the signature covers the DER of the attributes as a SET OF.
    to_sign = signed_attrs.dump()
    scheme = tsa.key.algorithm.default_scheme
    signature = custody.sign_digest(tsa.key, hash_algorithm.digest(to_sign), hash_algorithm, scheme)
    signature_algorithm = f"{digest_name}_{'ecdsa' if tsa.key.algorithm.is_ec else 'rsa'}"
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": cert.issuer,
                        "serial_number": cert.serial_number,
                    }
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest_name}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}),
            "signature": signature,
        }
    )
    signed_data_fields: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest_name})],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    if request["cert_req"].native:
        signed_data_fields["certificates"] = [cert]
    token = cms.ContentInfo(
        {"content_type": "signed_data", "content": cms.SignedData(signed_data_fields)}
    )
    response = tsp.TimeStampResp(
        {"status": tsp.PKIStatusInfo({"status": "granted"}), "time_stamp_token": token}
    )
    return TimeStampAnswer(response.dump(), True, serial)
