"""Working days on the Polish calendar: weekends, public holidays (24 December from
2025 on), a library's closed days; the moment a window's codes are released."""
from __future__ import annotations

from datetime import date, time, timedelta, timezone

import pytest

from kiosk.domain.refusals import Refused
from kiosk.domain.rules import EarlyRelease, ReleaseDay, Rules, release_moment
from kiosk.domain.working_days import (ClosedDayProblem, first_working_day_from, is_working_day,
                                       last_working_day_before, month_start, month_starts, parse_closed_day,
                                       public_holiday_name)

NONE_CLOSED: frozenset[date] = frozenset()


def test_may_2027_starts_on_tuesday_the_4th():
    # 1 May is a Saturday (and a holiday), 2 May a Sunday, 3 May the Constitution Day.
    assert date(2027, 5, 1).weekday() == 5
    assert not is_working_day(date(2027, 5, 3))
    assert first_working_day_from(date(2027, 5, 1)) == date(2027, 5, 4)
    assert date(2027, 5, 4).weekday() == 1


def test_24_december_is_a_holiday_from_2025_on():
    assert not is_working_day(date(2025, 12, 24))
    assert public_holiday_name(date(2025, 12, 24)) == "Wigilia Bożego Narodzenia"
    assert is_working_day(date(2024, 12, 24))
    assert public_holiday_name(date(2024, 12, 24)) is None
    # 24–26 December holidays, 27–28 a weekend.
    assert first_working_day_from(date(2025, 12, 24)) == date(2025, 12, 29)
    assert first_working_day_from(date(2024, 12, 24)) == date(2024, 12, 24)


def test_a_closed_day_moves_the_first_working_day():
    # 1 November 2026 is a Sunday and All Saints' Day; Monday the 2nd is a working day...
    assert first_working_day_from(date(2026, 11, 1)) == date(2026, 11, 2)
    # ...unless the library is closed then.
    assert first_working_day_from(date(2026, 11, 1), {date(2026, 11, 2)}) == date(2026, 11, 3)


@pytest.mark.parametrize("day, closed, before", [
    (date(2023, 7, 1), NONE_CLOSED, date(2023, 6, 30)),  # a Saturday: Friday the 30th
    (date(2027, 1, 1), NONE_CLOSED, date(2026, 12, 31)),  # New Year's Eve is a working Thursday
    (date(2027, 1, 1), frozenset({date(2026, 12, 31)}), date(2026, 12, 30)),  # the 31st closed
    (date(2026, 1, 1), frozenset({date(2025, 12, 31), date(2025, 12, 30)}), date(2025, 12, 29)),
])
def test_the_last_working_day_before(day, closed, before):
    assert last_working_day_before(day, closed) == before


def test_a_library_closed_for_months_keeps_the_day_rather_than_searching_on():
    closed = {date(2027, 3, 1) + timedelta(days=n) for n in range(120)}
    assert first_working_day_from(date(2027, 3, 1), closed) == date(2027, 3, 1)


def test_a_month_start_names_what_moved_it():
    may = month_start(date(2027, 5, 17))
    assert (may.month, may.day) == (date(2027, 5, 1), date(2027, 5, 4))
    # 1 May fell on a Saturday: only the Monday holiday moved the day.
    assert may.holidays == (date(2027, 5, 3),) and may.closed == () and may.moved

    november = month_start(date(2026, 11, 1), {date(2026, 11, 2)})
    assert november.holidays == () and november.closed == (date(2026, 11, 2),)

    weekend_only = month_start(date(2027, 8, 1))  # a Sunday
    assert weekend_only.day == date(2027, 8, 2) and not weekend_only.moved


def test_month_starts_run_over_the_year_end():
    starts = month_starts(date(2026, 11, 20), 3)
    assert [start.month for start in starts] == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    assert starts[2].day == date(2027, 1, 4)  # New Year on Friday, then a weekend


@pytest.mark.parametrize("text, day", [("03.05.2027", date(2027, 5, 3)), ("2027-05-03", date(2027, 5, 3)),
                                       (" 2027-05-03 ", date(2027, 5, 3))])
def test_a_closed_day_is_given_as_polish_or_iso_date(text, day):
    assert parse_closed_day(text) == day


@pytest.mark.parametrize("text", ["", "jutro", "31.02.2027", "0001-01-01", "9999-12-31", "2027-05"])
def test_anything_else_is_refused_naming_it(text):
    with pytest.raises(Refused) as refused:
        parse_closed_day(text)
    assert refused.value.reason is ClosedDayProblem.BAD_DATE
    assert refused.value.details["value"] == text.strip()


def _utc(moment):
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def test_a_release_at_10_is_10_in_warsaw_in_summer_and_in_winter():
    rules = Rules(release_day=ReleaseDay.FIRST_WORKING_DAY, release_time=time(10, 0))

    summer = release_moment(rules, date(2027, 5, 1), NONE_CLOSED, "Europe/Warsaw")
    winter = release_moment(rules, date(2026, 11, 1), frozenset({date(2026, 11, 2)}), "Europe/Warsaw")

    assert (summer.date(), summer.time()) == (date(2027, 5, 4), time(10, 0))
    assert summer.utcoffset() == timedelta(hours=2) and _utc(summer).hour == 8
    assert (winter.date(), winter.time()) == (date(2026, 11, 3), time(10, 0))
    assert winter.utcoffset() == timedelta(hours=1) and _utc(winter).hour == 9


def test_a_release_from_the_window_start_ignores_the_calendar_and_an_early_one_comes_before():
    plain = release_moment(Rules(), date(2025, 12, 24), NONE_CLOSED, "Europe/Warsaw")
    christmas = release_moment(Rules(release_day=ReleaseDay.FIRST_WORKING_DAY), date(2025, 12, 24), NONE_CLOSED,
                               "Europe/Warsaw")
    early = release_moment(Rules(early_release=EarlyRelease.LAST_WORKING_DAY_BEFORE, release_time=time(10, 0)),
                           date(2027, 1, 1), frozenset({date(2026, 12, 31)}), "Europe/Warsaw")

    assert (plain.date(), plain.time()) == (date(2025, 12, 24), time(0, 0))
    assert christmas.date() == date(2025, 12, 29)
    assert (early.date(), early.time(), early.utcoffset()) == (date(2026, 12, 30), time(10, 0), timedelta(hours=1))
