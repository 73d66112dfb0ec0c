from __future__ import annotations

import pytest
from egov_common import errors
from egov_common.errors import Code, EgovError, FieldViolation, NotFound


def test_error_carries_code_reason_violations_and_metadata() -> None:
    err = NotFound(
        "DOCUMENT_NOT_FOUND",
        "no document with that id",
        field_violations=(FieldViolation("document_id", "unknown"),),
        metadata={"document_id": "d-1"},
    )
    assert err.code is Code.NOT_FOUND
    assert err.reason == "DOCUMENT_NOT_FOUND"
    assert err.message == "no document with that id"
    assert err.field_violations == (FieldViolation("document_id", "unknown"),)
    assert err.metadata == {"document_id": "d-1"}
    assert isinstance(err, EgovError)


@pytest.mark.parametrize("reason", ["lower_case", "", "TRAILING_", "HAS SPACE", "9STARTS_DIGIT"])
def test_reason_that_is_not_upper_snake_case_is_refused(reason: str) -> None:
    with pytest.raises(ValueError):
        errors.InvalidArgument(reason)


def test_every_code_but_ok_has_its_own_subclass() -> None:
    for code in Code:
        cls = errors.error_for_code(code)
        if code is Code.OK:
            assert cls is errors.Unknown
        else:
            assert cls.code is code
