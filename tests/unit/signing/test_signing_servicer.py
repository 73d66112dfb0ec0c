"""The gRPC servicer called in-process: a request it cannot serve is INVALID_ARGUMENT with a
reason, anything in the PDF gives a report, never INTERNAL."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from egov.signing.v1 import signing_pb2 as pb
from egov_common.errors import Code, InvalidArgument
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from egov_signing.servicer import SigningServicer
from google.protobuf import timestamp_pb2
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import enumerate_sig_fields
from signing_testkit import SigningPki, SoftwareKeys, make_pdf, make_pki


class _Context:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def _servicer(pki: SigningPki, *, hard_fail: bool = False) -> SigningServicer:
    mode = RevocationMode.HARD_FAIL if hard_fail else RevocationMode.SOFT_FAIL
    verifier = DocumentVerifier(TrustAnchors([pki.root_pem]), revocation_mode=mode)
    return SigningServicer(
        signing=None,  # type: ignore[arg-type]
        verifier=lambda: verifier,
        limits=DocumentLimits(),
    )


def _verify(
    servicer: SigningServicer, pdf: bytes, options: pb.VerifyOptions | None = None
) -> pb.VerifyDocumentResponse:
    requests = [pb.VerifyDocumentRequest(chunk=pdf)]
    if options is not None:
        requests.insert(0, pb.VerifyDocumentRequest(options=options))
    return servicer.VerifyDocument(iter(requests), _Context())  # type: ignore[arg-type]


def _signed(pki: SigningPki, keys: SoftwareKeys) -> bytes:
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    return service.sign(make_pdf(), SignOptions("cred-1", Level.B_T, field_name="Sig1")).pdf


def _renamed(pdf: bytes, name: generic.PdfObject) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    for _, _, ref in enumerate_sig_fields(writer.prev):
        ref.get_object()["/T"] = name
        writer.mark_update(ref.reference)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        # UTF-16 with a lone surrogate: pyHanko leaves the name as bytes
        (generic.ByteStringObject(b"\xfe\xff\xd8\x00\x00A"), "\ufffdA"),
        (generic.TextStringObject("Sig1\x01\x0b"), "Sig1\\x01\\x0b"),
    ],
)
def test_a_field_name_that_is_not_plain_text_still_gives_a_report(
    pki: SigningPki, keys: SoftwareKeys, raw_name: generic.PdfObject, shown: str
) -> None:
    pdf = _renamed(_signed(pki, keys), raw_name)
    response = _verify(_servicer(pki), pdf, pb.VerifyOptions(include_etsi_xml=True))
    assert [s.field_name for s in response.report.signatures] == [shown]
    assert response.report.signatures[0].indication != pb.INDICATION_UNSPECIFIED
    root = ET.fromstring(response.etsi_xml)  # well-formed XML 1.0
    assert shown in ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize(
    "stamp",
    [
        timestamp_pb2.Timestamp(seconds=253402300800),  # 10000-01-01
        timestamp_pb2.Timestamp(seconds=-62135596801),  # before 0001-01-01
        timestamp_pb2.Timestamp(seconds=0, nanos=-5),
    ],
)
def test_an_out_of_range_validation_time_is_invalid_argument(
    pki: SigningPki, keys: SoftwareKeys, stamp: timestamp_pb2.Timestamp
) -> None:
    with pytest.raises(InvalidArgument) as err:
        _verify(_servicer(pki), _signed(pki, keys), pb.VerifyOptions(validation_time=stamp))
    assert err.value.code is Code.INVALID_ARGUMENT
    assert err.value.reason == "VALIDATION_TIME_INVALID"
    assert [v.field for v in err.value.field_violations] == ["options.validation_time"]


@pytest.mark.parametrize(
    ("signer_crl", "expected"),
    [
        # checked against the embedded CRL of the issuing CA, in hard-fail mode
        (True, "REVOCATION_STATUS_GOOD"),
        # proto RevocationStatus: the certificate declares no revocation service
        (False, "REVOCATION_STATUS_NOT_CHECKED"),
    ],
)
def test_revocation_status_is_good_only_when_revocation_was_checked(
    signer_crl: bool, expected: str
) -> None:
    pki = make_pki(signer_crl=signer_crl)
    service = PdfSigningService(
        SoftwareKeys(pki),
        timestamper=pki.timestamper(),
        validation_context_factory=pki.validation_context,
    )
    pdf = service.sign(make_pdf(), SignOptions("cred-1", Level.B_LT)).pdf
    (sig,) = _verify(_servicer(pki, hard_fail=True), pdf).report.signatures
    assert sig.indication == pb.INDICATION_TOTAL_PASSED, sig.reason
    assert pb.RevocationStatus.Name(sig.revocation_status) == expected
