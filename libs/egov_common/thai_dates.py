"""Dates as people in Thailand read them: Bangkok time, Thai month names, the Buddhist era.

One place for the signature stamp, the reports and the verify portal, so a document signed at
01:00 in Bangkok on the 26th says the 26th everywhere, never the UTC date of the 25th.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "BANGKOK",
    "BUDDHIST_ERA_OFFSET",
    "ENGLISH_MONTHS",
    "THAI_MONTHS",
    "format_date",
    "in_bangkok",
]

#: Indochina Time, UTC+7 all year (no daylight saving).
BANGKOK = timezone(timedelta(hours=7), "ICT")
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
    """``value`` in Bangkok time; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BANGKOK)


def format_date(value: datetime, language: str) -> str:
    """The Bangkok calendar date: ``26 พฤศจิกายน 2569`` in Thai, ``26 November 2026`` otherwise
    (month names fixed here, never from the process locale)."""
    local = in_bangkok(value)
    if language == "th":
        return f"{local.day} {THAI_MONTHS[local.month - 1]} {local.year + BUDDHIST_ERA_OFFSET}"
    return f"{local.day} {ENGLISH_MONTHS[local.month - 1]} {local.year}"
