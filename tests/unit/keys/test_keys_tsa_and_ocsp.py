"""RFC 3161 and RFC 6960 edge cases: whatever bytes arrive, the answer is a well-formed
protocol response, never an exception."""

from __future__ import annotations

import hashlib
import json

import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import ocsp as asn1_ocsp
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def timestamp_request(digest: bytes, algorithm: str = "sha256", **extra) -> bytes:
    fields = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
        "cert_req": True,
    }
    fields.update(extra)
    return tsp.TimeStampReq(fields).dump()


class _TimeStampResp(core.Sequence):
    # RFC 3161 2.4.2: timeStampToken is OPTIONAL (absent on rejection).
    _fields = [  # noqa: RUF012
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def status_of(der: bytes) -> tuple[str, set[str] | None]:
    response = _TimeStampResp.load(der)
    assert response.dump(force=True) == der  # strict DER, nothing trailing
    status = response["status"]
    return status["status"].native, status["fail_info"].native


def test_token_echoes_nonce_and_policy_with_unique_serials(keys):
    request = timestamp_request(hashlib.sha256(b"x").digest(), nonce=424242)
    first = keys.trust.timestamp(request)
    second = keys.trust.timestamp(request)
    assert first.granted and second.granted and first.serial != second.serial
    token = tsp.TimeStampResp.load(first.der)["time_stamp_token"]
    tst = token["content"]["encap_content_info"]["content"].parsed
    assert tst["nonce"].native == 424242
    assert tst["policy"].dotted == keys.trust.tsa_policy_oid
    assert tst["message_imprint"]["hashed_message"].native == hashlib.sha256(b"x").digest()


def test_every_token_is_audited_with_what_it_stamped_before_it_is_given(keys, monkeypatch):
    digest = hashlib.sha256(b"contract").digest()
    answer = keys.trust.timestamp(timestamp_request(digest, nonce=7))
    tst = tsp.TimeStampResp.load(answer.der)["time_stamp_token"]["content"][
        "encap_content_info"
    ]["content"].parsed
    [record] = [r for r in keys.repository.audit_records() if r.action == "timestamp.issue"]
    details = json.loads(record.details_json)
    assert int(details["serial"], 16) == tst["serial_number"].native == answer.serial
    assert details["imprint"] == digest.hex() and details["imprint_algorithm"] == "sha256"
    assert details["policy"] == tst["policy"].dotted
    assert details["gen_time"] == tst["gen_time"].native.strftime("%Y%m%d%H%M%SZ")
    assert (record.actor, record.outcome) == ("tsa", "success")
    # A rejected request stamps nothing, so leaves no record.
    keys.trust.timestamp(timestamp_request(b"\x00" * 31))
    assert len([r for r in keys.repository.audit_records() if r.action == "timestamp.issue"]) == 1

    def audit_down(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keys.repository, "append_audit", audit_down)
    refused = keys.trust.timestamp(timestamp_request(digest))
    assert not refused.granted
    assert status_of(refused.der) == ("rejection", {"system_failure"})


def test_bad_timestamp_requests_are_rejected_with_rfc_3161_failure_info(keys):
    assert status_of(keys.trust.timestamp(timestamp_request(b"\x00" * 20, "sha1")).der) == (
        "rejection",
        {"bad_alg"},
    )
    assert status_of(keys.trust.timestamp(timestamp_request(b"\x00" * 31)).der) == (
        "rejection",
        {"bad_data_format"},
    )
    assert status_of(
        keys.trust.timestamp(timestamp_request(b"\x00" * 32, req_policy="1.2.3.4")).der
    ) == ("rejection", {"unaccepted_policy"})
    assert status_of(keys.trust.timestamp(b"not der").der) == ("rejection", {"bad_data_format"})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_any_bytes_get_a_timestamp_response(keys, data):
    answer = keys.trust.timestamp(data)
    assert status_of(answer.der)[0] in {"granted", "rejection"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_any_bytes_get_an_ocsp_response(keys, data):
    answer = keys.trust.ocsp(data)
    response = ocsp.load_der_ocsp_response(answer.der)
    assert response.response_status in {
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
        ocsp.OCSPResponseStatus.SUCCESSFUL,
    }


def test_ocsp_for_a_foreign_issuer_is_unauthorized(keys):
    from cryptography.hazmat.primitives import hashes

    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(b"\x01" * 20, b"\x02" * 20, 7, hashes.SHA1())
        .build()
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    answer = ocsp.load_der_ocsp_response(keys.trust.ocsp(request.public_bytes(Encoding.DER)).der)
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("nonce", [-1, -128, -129, -(2**63)])
def test_a_negative_nonce_is_echoed(keys, nonce):
    # RFC 3161 2.4.2: the nonce is any INTEGER and comes back unchanged in the token.
    answer = keys.trust.timestamp(timestamp_request(hashlib.sha256(b"x").digest(), nonce=nonce))
    assert answer.granted
    token = tsp.TimeStampResp.load(answer.der)["time_stamp_token"]
    tst_der = token["content"]["encap_content_info"]["content"].parsed.dump()
    tst = tsp.TSTInfo.load(tst_der)
    assert tst["nonce"].native == nonce
    assert tst.dump(force=True) == tst_der  # DER: the shortest two's complement encoding


def test_a_timestamp_request_with_trailing_bytes_is_bad_data_format(keys):
    request = timestamp_request(hashlib.sha256(b"x").digest())
    assert status_of(keys.trust.timestamp(request + b"\x00").der) == (
        "rejection",
        {"bad_data_format"},
    )


def test_an_ocsp_request_with_a_repeated_extension_is_malformed(keys):
    # A request for one of our certificates, so that the extensions are reached at all.
    root = keys.trust.authority("root").certificate
    ca = keys.trust.authority("natural-person").certificate
    cert_id = ocsp.OCSPRequestBuilder().add_certificate(ca, root, hashes.SHA1()).build()
    nonce = {"extn_id": "nonce", "critical": False, "extn_value": b"n" * 16}
    request = asn1_ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha1"},
                            "issuer_name_hash": cert_id.issuer_name_hash,
                            "issuer_key_hash": cert_id.issuer_key_hash,
                            "serial_number": cert_id.serial_number,
                        }
                    }
                ],
                "request_extensions": [nonce, nonce],
            }
        }
    )
    answer = ocsp.load_der_ocsp_response(keys.trust.ocsp(request.dump()).der)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
