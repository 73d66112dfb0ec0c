from __future__ import annotations

import io
import json
import logging
import re

import pytest
from egov_common.logging import mask_identifier, mask_text, setup_logging
from hypothesis import given
from hypothesis import strategies as st

_thirteen_digits = st.text(alphabet="0123456789", min_size=13, max_size=13)


def test_thai_identifier_is_masked_like_the_style_guide() -> None:
    assert mask_identifier("1234567890121") == "1-2345-xxxxx-xx-1"
    assert mask_identifier("1-2345-67890-12-1") == "1-2345-xxxxx-xx-1"


@given(_thirteen_digits)
def test_masked_identifier_keeps_only_prefix_and_check_digit(pid: str) -> None:
    masked = mask_identifier(pid)
    assert re.fullmatch(r"\d-\d{4}-xxxxx-xx-\d", masked)
    assert masked.replace("-", "")[:5] == pid[:5]
    assert masked[-1] == pid[-1]
    assert pid[5:12] not in masked.replace("-", "").replace("x", "")[5:]


@given(st.text(min_size=3, max_size=20).filter(lambda s: len(s.replace("-", "")) != 13))
def test_other_identifiers_keep_first_and_last_character(identifier: str) -> None:
    masked = mask_identifier(identifier)
    assert len(masked) == len(identifier)
    assert masked[0] == identifier[0] and masked[-1] == identifier[-1]
    assert set(masked[1:-1]) <= {"x"}


@given(st.text(alphabet=" abc:=", max_size=10), _thirteen_digits, st.text(" xyz.", max_size=10))
def test_free_text_never_keeps_a_thirteen_digit_run(before: str, pid: str, after: str) -> None:
    masked = mask_text(before + pid + after)
    assert not re.search(r"\d{13}", masked)


def test_log_lines_are_json_with_service_and_masked_identifiers() -> None:
    stream = io.StringIO()
    setup_logging("registry", "INFO", stream)
    try:
        logging.getLogger("t").info(
            "lookup for %s", "1234567890121", extra={"subject": "3101234567893"}
        )
    finally:
        logging.getLogger().handlers.clear()
    line = json.loads(stream.getvalue().strip())
    assert line["service"] == "registry"
    assert line["message"] == "lookup for 1-2345-xxxxx-xx-1"
    assert line["subject"] == "3-1012-xxxxx-xx-3"
    assert "trace_id" in line


def _log_line(message: str, *args: object, **extra: object) -> dict[str, object]:
    """The line a service writes for ``log.info(message, *args, extra=extra)`` (and nothing
    else sees the record: pytest's own capture would format it unmasked)."""
    root = logging.getLogger()
    others, root.handlers = root.handlers, []
    stream = io.StringIO()
    setup_logging("registry", "INFO", stream)
    try:
        logging.getLogger("t").info(message, *args, extra=extra)
    finally:
        root.handlers = others
    line: dict[str, object] = json.loads(stream.getvalue().strip())
    return line


def test_identifiers_written_with_spaces_are_masked_too() -> None:
    line = _log_line("card 1 1017 00230 70 8 read", holder="holder 3 1012 34567 89 3")
    assert line["message"] == "card 1-1017-xxxxx-xx-8 read"
    assert line["holder"] == "holder 3-1012-xxxxx-xx-3"
    assert mask_text("1-1017 00230-70 8") == "1-1017-xxxxx-xx-8"


def test_identifiers_in_numeric_and_nested_extras_are_masked() -> None:
    line = _log_line(
        "lookup",
        subject=1101700230708,
        request={"pid": "3101234567893", "names": ["a"]},
        pids=["1101700230708", 3101234567893],
        count=3,
    )
    assert line["subject"] == "1-1017-xxxxx-xx-8"
    assert line["count"] == 3  # other numbers stay numbers
    text = json.dumps(line)
    assert not re.search(r"\d{13}", text)
    assert "3-1012-xxxxx-xx-3" in str(line["request"])
    assert "1-1017-xxxxx-xx-8" in str(line["pids"])


def test_a_log_call_whose_arguments_do_not_fit_never_fails_the_caller(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _log_line("looked up %d in %s", "1101700230708")  # wrong type, one argument short
    assert "looked up" in str(line["message"])
    assert "1-1017-xxxxx-xx-8" in str(line["message"])
    assert "1101700230708" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("q=%201234567890121", "q=%201-2345-xxxxx-xx-1"),  # URL-escaped space, then the id
        ("/search?q=%2C1234567890121&x=1", "/search?q=%2C1-2345-xxxxx-xx-1&x=1"),
        ('{"q": "\\u00201234567890121"}', '{"q": "\\u00201-2345-xxxxx-xx-1"}'),  # JSON escape
    ],
)
def test_an_identifier_right_after_an_escape_ending_in_a_digit_is_masked(
    text: str, masked: str
) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    ["12345678901234", "%2012345678901234", "order 99912345678901212", "1234567890121999"],
)
def test_a_longer_digit_run_is_no_identifier_and_stays(text: str) -> None:
    assert mask_text(text) == text


@given(
    st.sampled_from(["", "q=", "%20", "%2c", "%0A", "%7E", "\\u0020", "\\x20", "id:"]),
    _thirteen_digits,
    st.text(" xyz.&", max_size=5),
)
def test_an_identifier_after_any_escape_never_keeps_its_digits(
    before: str, pid: str, after: str
) -> None:
    masked = mask_text(before + pid + after)
    assert pid not in masked
    assert masked.endswith(f"{pid[0]}-{pid[1:5]}-xxxxx-xx-{pid[12]}{after}")
