"""Hostile input never crashes verification: any mutation of a signed PDF ends in a report or in
InvalidArgument with one of the documented reasons (property test)."""

from __future__ import annotations

import pytest
from egov_common.errors import DeadlineExceeded, InvalidArgument
from egov_signing.domain.pdf_input import DocumentLimits
from egov_signing.domain.report import Indication
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing_testkit import SigningPki, SoftwareKeys, make_pdf

REASONS = {
    "NOT_A_PDF",
    "PDF_MALFORMED",
    "PDF_ENCRYPTED",
    "PDF_TOO_LARGE",
    "PDF_TOO_MANY_PAGES",
    "PDF_TOO_MANY_SIGNATURES",
    "PDF_DECOMPRESSION_LIMIT",
}


@pytest.fixture(scope="module")
def signed_pdf(pki: SigningPki) -> bytes:
    return (
        PdfSigningService(SoftwareKeys(pki)).sign(make_pdf(), SignOptions("cred-1", Level.B_B)).pdf
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_signed_pdf_gives_a_verdict_or_a_documented_refusal(
    pki: SigningPki, signed_pdf: bytes, data: st.DataObject
) -> None:
    pdf = bytearray(signed_pdf)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(pdf) - 1))
        if kind == "flip":
            pdf[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del pdf[at : at + data.draw(st.integers(1, 64))]
        else:
            pdf[at:at] = data.draw(st.binary(min_size=1, max_size=32))
    verifier = DocumentVerifier(
        TrustAnchors([pki.root_pem]),
        limits=DocumentLimits(deadline_seconds=20),
        revocation_mode=RevocationMode.SOFT_FAIL,
    )
    try:
        report = verifier.verify(bytes(pdf))
    except InvalidArgument as err:
        assert err.reason in REASONS
        return
    except DeadlineExceeded:
        return
    # whatever survives parsing is judged; a changed signed byte can never pass
    if bytes(pdf) != signed_pdf:
        for sig in report.signatures:
            if sig.indication is Indication.TOTAL_PASSED:
                assert sig.intact and sig.valid
