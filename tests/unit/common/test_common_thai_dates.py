"""Dates on stamps, reports and pages are Bangkok calendar dates, Buddhist era in Thai."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from egov_common.thai_dates import format_clock, format_date, in_bangkok


def test_the_thai_date_is_the_buddhist_era_year_with_the_thai_month() -> None:
    when = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert format_date(when, "th") == "25 พฤศจิกายน 2569"
    assert format_date(when, "en") == "25 November 2026"


def test_an_evening_in_utc_is_already_the_next_day_in_bangkok() -> None:
    when = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)  # 01:30 on 1 January 2027 in Bangkok
    assert format_date(when, "th") == "1 มกราคม 2570"
    assert format_date(when, "en") == "1 January 2027"
    assert in_bangkok(when).hour == 1


def test_naive_times_are_utc_and_other_zones_are_converted() -> None:
    assert format_date(datetime(2026, 6, 30, 17, 0), "en") == "1 July 2026"
    tokyo = timezone(timedelta(hours=9))
    assert format_date(datetime(2026, 7, 1, 1, 0, tzinfo=tokyo), "en") == "30 June 2026"


def test_the_last_hours_of_year_9999_are_new_year_10000_in_bangkok() -> None:
    # 99991231235959Z: a certificate without an expiry (RFC 5280 4.1.2.5), or a signing time
    # a PDF claims; Bangkok is already in the year 10000, which datetime cannot hold.
    when = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert format_date(when, "th") == "1 มกราคม 10543"
    assert format_date(when, "en") == "1 January 10000"
    assert format_date(datetime(9999, 12, 31, 16, 59, tzinfo=UTC), "en") == "31 December 9999"


def test_the_first_day_of_year_1_in_a_zone_east_of_bangkok_is_still_that_day() -> None:
    manila = timezone(timedelta(hours=8))
    assert format_date(datetime(1, 1, 1, 0, 30, tzinfo=manila), "en") == "31 December 0"
    assert format_date(datetime(1, 1, 1, 1, 30, tzinfo=manila), "th") == "1 มกราคม 544"


def test_the_time_of_day_of_the_last_hours_of_year_9999_is_bangkok_s_too() -> None:
    # a certificate that never expires (RFC 5280: 99991231235959Z) is shown in full
    never = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert (format_date(never, "en"), format_clock(never)) == ("1 January 10000", "06:59:59")
    assert format_clock(datetime(2026, 11, 27, 17, 30, 5, tzinfo=UTC)) == "00:30:05"
