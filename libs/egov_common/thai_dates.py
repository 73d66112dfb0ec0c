"""Dates as people in Thailand read them: Bangkok time, Thai month names, the Buddhist era.

One place for the signature stamp, the reports and the verify portal, so a document signed at
01:00 in Bangkok on the 26th says the 26th everywhere, never the UTC date of the 25th.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta, timezone

__all__ = [
    "BANGKOK",
    "BUDDHIST_ERA_OFFSET",
    "ENGLISH_MONTHS",
    "THAI_MONTHS",
    "format_clock",
    "format_date",
    "in_bangkok",
]

_UTC_OFFSET = timedelta(hours=7)
#: Indochina Time, UTC+7 all year (no daylight saving).
BANGKOK = timezone(_UTC_OFFSET, "ICT")
#: B.E. = C.E. + 543.
BUDDHIST_ERA_OFFSET = 543

THAI_MONTHS = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
ENGLISH_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def in_bangkok(value: datetime) -> datetime:
    """``value`` in Bangkok time; a naive datetime is taken as UTC.

    Raises ``OverflowError`` when that is outside the years 1 to 9999 that ``datetime`` holds
    (from 9999-12-31T17:00:00Z on; :func:`format_date` still names the day)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(BANGKOK)
    except OverflowError:  # it goes through UTC, which may be out of range where Bangkok is not
        shift = _UTC_OFFSET - (value.utcoffset() or timedelta(0))
        return (value.replace(tzinfo=None) + shift).replace(tzinfo=BANGKOK)


def format_date(value: datetime, language: str) -> str:
    """The Bangkok calendar date: ``26 พฤศจิกายน 2569`` in Thai, ``26 November 2026`` otherwise
    (month names fixed here, never from the process locale). Any aware or naive (UTC)
    datetime has one, ``9999-12-31T23:59:59Z`` (a certificate that never expires, RFC 5280
    4.1.2.5) too: ``1 January 10000``."""
    try:
        local = in_bangkok(value)
        year, month, day = local.year, local.month, local.day
    except OverflowError:  # the day after 9999-12-31 or before 0001-01-01
        year, month, day = (MAXYEAR + 1, 1, 1) if value.year == MAXYEAR else (MINYEAR - 1, 12, 31)
    if language == "th":
        return f"{day} {THAI_MONTHS[month - 1]} {year + BUDDHIST_ERA_OFFSET}"
    return f"{day} {ENGLISH_MONTHS[month - 1]} {year}"


def format_clock(value: datetime) -> str:
    """The Bangkok time of day, ``HH:MM:SS``, for any datetime :func:`format_date` names (a
    time past 9999-12-31T17:00:00Z too, whose Bangkok day no ``datetime`` holds)."""
    try:
        local = in_bangkok(value)
    except OverflowError:
        utc = value if value.tzinfo is None else value.astimezone(UTC)
        seconds = (utc.hour * 3600 + utc.minute * 60 + utc.second + 7 * 3600) % 86400
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return local.strftime("%H:%M:%S")
