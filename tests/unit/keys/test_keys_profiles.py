"""ETSI subject parsing (egov_pki.profiles): properties over generated names."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID
from egov_pki.identifiers import check_digit
from egov_pki.profiles import parse_subject
from hypothesis import given
from hypothesis import strategies as st

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)
printable = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40
)


@given(twelve_digits, st.booleans())
def test_semantics_identifier_round_trips(first12: str, legal: bool) -> None:
    number = first12 + str(check_digit(first12))
    if legal:
        attr = x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRTH-{number}")
    else:
        attr = x509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOTH-{number}")
    parsed = parse_subject(x509.Name([attr, x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    assert (parsed.namespace, parsed.number) == ("TH-JUR" if legal else "TH-PID", number)
    assert parsed.masked_number.endswith(number[-1]) and number[5:12] not in parsed.masked_number


@given(printable)
def test_other_serial_numbers_are_never_read_as_thai_identifiers(value: str) -> None:
    parsed = parse_subject(x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, value)]))
    looks_thai = value.startswith("PNOTH-") and len(value) == 19 and value[6:].isdigit()
    assert (parsed.number != "") == looks_thai
    if not looks_thai:
        assert parsed.namespace == ""
