"""Namespaced identifiers: Thai mod-11 check digit, juristic numbers, passports."""

from __future__ import annotations

import pytest
from egov_common.errors import InvalidArgument
from egov_pki.identifiers import (
    Namespace,
    check_digit,
    is_valid_thai_number,
    juristic_number,
    national_id,
    parse_identifier,
    passport,
)
from hypothesis import given
from hypothesis import strategies as st

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


def _complete(first_twelve: str) -> str:
    return first_twelve + str(check_digit(first_twelve))


def test_known_national_id_check_digit() -> None:
    # weights 13..2: 13+12+0+10+0+8+0+0+20+12+0+0 = 75; (11 - 75 % 11) % 10 = 8
    assert check_digit("110170023070") == 8
    assert is_valid_thai_number(_complete("110170023070"))


@given(twelve_digits)
def test_every_number_with_its_check_digit_is_valid(first: str) -> None:
    assert is_valid_thai_number(_complete(first))


@given(twelve_digits, st.integers(min_value=1, max_value=9))
def test_a_changed_check_digit_is_detected(first: str, delta: int) -> None:
    number = _complete(first)
    assert not is_valid_thai_number(number[:12] + str((int(number[12]) + delta) % 10))


@given(st.text(max_size=20))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    try:
        ident = parse_identifier(text)
    except InvalidArgument as exc:
        assert exc.reason.startswith("IDENTIFIER_")
    else:
        assert str(parse_identifier(str(ident))) == str(ident)


def test_national_id_with_wrong_check_digit_is_refused() -> None:
    good = _complete("310050012345")
    bad = good[:12] + str((int(good[12]) + 1) % 10)
    with pytest.raises(InvalidArgument) as info:
        national_id(bad)
    assert info.value.reason == "IDENTIFIER_CHECKSUM_INVALID"
    assert info.value.field_violations[0].field == "national_id"


def test_juristic_number_needs_leading_zero_and_checksum() -> None:
    good = _complete("010553600031")
    assert juristic_number(good).namespace is Namespace.TH_JUR
    with pytest.raises(InvalidArgument) as info:
        juristic_number(_complete("110553600031"))
    assert info.value.reason == "IDENTIFIER_MALFORMED"


def test_namespace_is_required_never_guessed() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_identifier(_complete("110170023070"))
    assert info.value.reason == "IDENTIFIER_NAMESPACE_UNKNOWN"


def test_round_trip_and_etsi_forms() -> None:
    pid = national_id(_complete("110170023070"))
    jur = juristic_number(_complete("010553600031"))
    pas = passport("gbr", "ab1234567")
    assert parse_identifier(str(pid)) == pid
    assert parse_identifier(str(pas)) == pas
    assert pid.etsi_semantic_identifier() == f"PNOTH-{pid.value}"
    assert jur.etsi_semantic_identifier() == f"NTRTH-{jur.value}"
    assert pas.etsi_semantic_identifier() == "PASGBR-AB1234567"
    assert pid.value not in pid.masked()


def test_the_namespace_not_the_first_digit_decides() -> None:
    number = _complete("010553600031")  # starts with 0 like a juristic number
    assert national_id(number).namespace is Namespace.TH_PID
    assert juristic_number(number).namespace is Namespace.TH_JUR
    assert parse_identifier(f"TH-PID:{number}") != parse_identifier(f"TH-JUR:{number}")


@pytest.mark.parametrize(
    "identifier",
    ["TH-PID:1101700230708\n", "TH-JUR:0994000000014\n", "PASSPORT:THA:AA1234567\n"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_identifier(identifier: str) -> None:
    # A regular expression's `$` also matches before a final newline: the whole text must match.
    assert parse_identifier(identifier.rstrip("\n"))
    with pytest.raises(InvalidArgument):
        parse_identifier(identifier)


@pytest.mark.parametrize(
    ("country", "number"),
    [("GBR", "\u017f12345"), ("GBR", "\ufb001234"), ("GBR", "\u0131d12345"), ("\u017fWE", "12345")],
    ids=["long-s", "ff-ligature", "dotless-i", "long-s-country"],
)
def test_non_ascii_letters_never_become_a_passport_number(country: str, number: str) -> None:
    # str.upper() turns "ſ" into "S", "ﬀ" into "FF", "ı" into "I": a look-alike typed in (or
    # sent) would be stored as another, perfectly ASCII, passport number.
    with pytest.raises(InvalidArgument) as info:
        passport(country, number)
    assert info.value.reason == "IDENTIFIER_MALFORMED"
    with pytest.raises(InvalidArgument):
        parse_identifier(f"PASSPORT:{country}:{number}")
