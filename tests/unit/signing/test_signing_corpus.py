"""Third-party signed PDFs (pyHanko's test data, shared/testdata) get the verdicts listed there.

Indications are compared strictly, sub-indications too (we follow pyHanko's conventions, which is
how the expected verdicts were derived), in both revocation modes, without network.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from egov_common.errors import InvalidArgument
from egov_signing.domain.report import Indication
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from egov_testing.corpus import corpus_dir

# the shared third-party corpus (outside the repository); EGOV_TEST_PDF_CORPUS overrides
CORPUS = corpus_dir()
MANIFEST = CORPUS / "manifest.json"

pytestmark = pytest.mark.skipif(not MANIFEST.exists(), reason="shared/testdata corpus absent")


def _entries() -> list[dict[str, Any]]:
    if not MANIFEST.exists():
        return []
    return list(json.loads(MANIFEST.read_text()))


def _verify(entry: dict[str, Any], mode: RevocationMode):  # type: ignore[no-untyped-def]
    anchors = TrustAnchors.from_pem_files(str(CORPUS / p) for p in entry["trust_roots"])
    verifier = DocumentVerifier(anchors, revocation_mode=mode)
    when = entry["validation_time"]
    return verifier.verify(
        (CORPUS / "pdf" / entry["file"]).read_bytes(),
        validation_time=datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None,
    )


@pytest.mark.parametrize("mode", [RevocationMode.HARD_FAIL, RevocationMode.SOFT_FAIL])
@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["file"])
def test_corpus_file_gets_its_expected_verdict(entry: dict[str, Any], mode: RevocationMode) -> None:
    outcome = entry["file_outcome"]
    if outcome.startswith("REJECTED"):
        with pytest.raises(InvalidArgument) as err:
            _verify(entry, mode)
        expected = "PDF_ENCRYPTED" if outcome == "REJECTED_ENCRYPTED" else "PDF_MALFORMED"
        assert err.value.reason == expected
        return
    report = _verify(entry, mode)
    if outcome == "NO_SIGNATURES":
        assert report.signatures == ()
        assert report.indication is Indication.INDETERMINATE
        return
    got = {s.field_name: s for s in report.signatures}
    # every signature dictionary appears, in signing order
    assert [s.field_name for s in report.signatures] == [
        s["field_name"] for s in entry["signatures"]
    ]
    for expected in entry["signatures"]:
        sig = got[expected["field_name"]]
        if mode is RevocationMode.HARD_FAIL:
            want = (expected["indication"], expected["sub_indication"])
        else:
            want = (expected["indication_soft_fail"], expected["sub_indication_soft_fail"])
        assert (sig.indication.value, sig.sub_indication) == want, sig.reasons
        assert sig.kind.value == (
            "DOCUMENT_TIMESTAMP" if expected["kind"] == "doc_timestamp" else "SIGNATURE"
        )
        facts = expected["facts"]
        if "modification_level" in facts and sig.modification_level is not None:
            assert sig.modification_level == facts["modification_level"]


def test_an_approval_signature_is_not_said_to_violate_a_certification() -> None:
    entry = next(
        e for e in _entries() if e["file"] == "form-update-override-appearance-stream-sneaky.pdf"
    )
    sig = _verify(entry, RevocationMode.HARD_FAIL).signatures[0]
    assert (sig.sub_indication, sig.certification_level) == ("ILLEGAL_MODIFICATIONS", None)
    assert sig.reasons[0] == "the document was changed after signing in a way that is not allowed"
