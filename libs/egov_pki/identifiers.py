"""Namespaced subject identifiers: Thai national ID, DBD juristic number, passport.

Every identifier carries its namespace (``TH-PID``, ``TH-JUR``, ``PASSPORT``); a number is never
classified by its first digit. The 13-digit Thai numbers (national ID of the Department of
Provincial Administration, juristic person number of the Department of Business Development) share
one mod-11 check digit: ``check = (11 - sum(d[i] * (13 - i) for i in 0..11) % 11) % 10``.

String form (what tokens, databases and certificates store): ``"<namespace>:<value>"``, e.g.
``TH-PID:1101700230708``, ``TH-JUR:0994000165455``, ``PASSPORT:GBR:123456789``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from egov_common.errors import FieldViolation, InvalidArgument
from egov_common.logging import mask_identifier

__all__ = [
    "Identifier",
    "Namespace",
    "check_digit",
    "is_valid_thai_number",
    "juristic_number",
    "national_id",
    "parse_identifier",
    "passport",
]


class Namespace(enum.StrEnum):
    """Who assigned the number: the namespace is part of every identifier."""

    TH_PID = "TH-PID"  # Thai national ID (natural person)
    TH_JUR = "TH-JUR"  # DBD juristic person / agency registration number
    PASSPORT = "PASSPORT"  # passport: issuing state (ISO 3166-1 alpha-3) + document number


_THIRTEEN_DIGITS = re.compile(r"[0-9]{13}")
_COUNTRY = re.compile(r"[A-Z]{3}")
_PASSPORT_NUMBER = re.compile(r"[A-Z0-9]{5,9}")


def check_digit(first_twelve: str) -> int:
    """The mod-11 check digit of a Thai 13-digit number given its first 12 digits.

    Raises ``ValueError`` unless ``first_twelve`` is exactly 12 ASCII digits.
    """
    if len(first_twelve) != 12 or not first_twelve.isascii() or not first_twelve.isdigit():
        raise ValueError("expected exactly 12 digits")
    total = sum(int(d) * (13 - i) for i, d in enumerate(first_twelve))
    return (11 - total % 11) % 10


def is_valid_thai_number(number: str) -> bool:
    """True when ``number`` is 13 ASCII digits whose last digit is the mod-11 check digit."""
    if not _THIRTEEN_DIGITS.fullmatch(number):
        return False
    return check_digit(number[:12]) == int(number[12])


@dataclass(frozen=True, slots=True)
class Identifier:
    """A validated, namespaced identifier. Build with the constructors below, not directly."""

    namespace: Namespace
    value: str

    def __str__(self) -> str:
        return f"{self.namespace.value}:{self.value}"

    @property
    def is_natural_person(self) -> bool:
        return self.namespace in (Namespace.TH_PID, Namespace.PASSPORT)

    @property
    def is_juristic_person(self) -> bool:
        return self.namespace is Namespace.TH_JUR

    def etsi_semantic_identifier(self) -> str:
        """ETSI EN 319 412-1 semantics identifier for a certificate subject.

        ``PNOTH-<national id>`` (natural person ``serialNumber``), ``PASGBR-<number>`` for a
        passport, ``NTRTH-<number>`` (legal person ``organizationIdentifier``).
        """
        if self.namespace is Namespace.TH_PID:
            return f"PNOTH-{self.value}"
        if self.namespace is Namespace.TH_JUR:
            return f"NTRTH-{self.value}"
        country, number = self.value.split(":", 1)
        return f"PAS{country}-{number}"

    def masked(self) -> str:
        """Safe for logs: namespace kept, digits hidden (``TH-PID:1-2345-xxxxx-xx-1``)."""
        return f"{self.namespace.value}:{mask_identifier(self.value)}"


def _invalid(field: str, reason: str, message: str) -> InvalidArgument:
    return InvalidArgument(reason, message, field_violations=(FieldViolation(field, message),))


def national_id(number: str, *, field: str = "national_id") -> Identifier:
    """A Thai national ID (``TH-PID``): 13 digits with the mod-11 check digit. Any first digit
    is accepted (type 0 exists: persons without Thai nationality); the namespace, not the first
    digit, says what the number is. Raises ``InvalidArgument`` (``IDENTIFIER_CHECKSUM_INVALID``
    or ``IDENTIFIER_MALFORMED``)."""
    if not _THIRTEEN_DIGITS.fullmatch(number):
        raise _invalid(field, "IDENTIFIER_MALFORMED", "a Thai national ID is 13 digits")
    if not is_valid_thai_number(number):
        raise _invalid(field, "IDENTIFIER_CHECKSUM_INVALID", "check digit does not match")
    return Identifier(Namespace.TH_PID, number)


def juristic_number(number: str, *, field: str = "juristic_number") -> Identifier:
    """A DBD juristic person / agency number (``TH-JUR``): 13 digits, leading 0, mod-11 check.

    Raises ``InvalidArgument`` (``IDENTIFIER_MALFORMED`` or ``IDENTIFIER_CHECKSUM_INVALID``).
    """
    if not _THIRTEEN_DIGITS.fullmatch(number) or number[0] != "0":
        raise _invalid(field, "IDENTIFIER_MALFORMED", "a juristic number is 13 digits starting 0")
    if not is_valid_thai_number(number):
        raise _invalid(field, "IDENTIFIER_CHECKSUM_INVALID", "check digit does not match")
    return Identifier(Namespace.TH_JUR, number)


def passport(country: str, number: str, *, field: str = "passport") -> Identifier:
    """A passport (``PASSPORT``): issuing state ISO 3166-1 alpha-3 + 5..9 letters/digits.

    ASCII letters are upper-cased; raises ``InvalidArgument`` (``IDENTIFIER_MALFORMED``).
    """
    # ASCII first: str.upper() makes "S" of "ſ" and "FF" of "ﬀ", another person's number.
    ascii_only = country.isascii() and number.isascii()
    country, number = country.upper(), number.upper()
    if not ascii_only or not _COUNTRY.fullmatch(country) or not _PASSPORT_NUMBER.fullmatch(number):
        raise _invalid(
            field, "IDENTIFIER_MALFORMED", "passport is a country code and 5-9 letters/digits"
        )
    return Identifier(Namespace.PASSPORT, f"{country}:{number}")


def parse_identifier(text: str, *, field: str = "identifier") -> Identifier:
    """Parse the ``"<namespace>:<value>"`` form. The namespace is required, never guessed.

    Raises ``InvalidArgument`` (``IDENTIFIER_NAMESPACE_UNKNOWN``, ``IDENTIFIER_MALFORMED``,
    ``IDENTIFIER_CHECKSUM_INVALID``).
    """
    namespace, sep, value = text.partition(":")
    if not sep:
        raise _invalid(field, "IDENTIFIER_NAMESPACE_UNKNOWN", "identifier needs a namespace prefix")
    if namespace == Namespace.TH_PID.value:
        return national_id(value, field=field)
    if namespace == Namespace.TH_JUR.value:
        return juristic_number(value, field=field)
    if namespace == Namespace.PASSPORT.value:
        country, sep2, number = value.partition(":")
        if not sep2:
            raise _invalid(field, "IDENTIFIER_MALFORMED", "passport is PASSPORT:<country>:<number>")
        return passport(country, number, field=field)
    raise _invalid(field, "IDENTIFIER_NAMESPACE_UNKNOWN", "unknown identifier namespace")
