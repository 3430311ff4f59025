"""Working days on the mainland calendar: holidays and adjusted working days both count."""

from __future__ import annotations

from datetime import date

import pytest

from services.incidents.governance.vulnerabilities.calendar import MainlandCalendar

calendar = MainlandCalendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),  # National Day holiday week
        (date(2026, 10, 10), True),  # a Saturday made a working day
        (date(2026, 2, 14), True),  # Saturday before the Spring Festival, a working day
        (date(2026, 2, 17), False),  # Spring Festival
        (date(2026, 10, 11), False),  # an ordinary Sunday
        (date(2026, 10, 12), True),  # an ordinary Monday
    ],
)
def test_holidays_and_adjusted_working_days(day: date, working: bool) -> None:
    assert calendar.is_working_day(day) is working


def test_fifteen_working_days_across_the_national_day_week() -> None:
    # Found on the Mid-Autumn holiday: Sep 28-30 (3), Oct 8, 9 (5), Saturday Oct 10 (6), then Oct 12-22.
    assert calendar.add_working_days(date(2026, 9, 25), 15) == date(2026, 10, 22)


def test_fifteen_working_days_across_the_spring_festival() -> None:
    # Feb 11-13, Saturday Feb 14, Feb 24-27, Saturday Feb 28, Mar 2-6, Mar 9.
    assert calendar.add_working_days(date(2026, 2, 10), 15) == date(2026, 3, 9)


def test_counting_back_gives_the_same_number() -> None:
    start = date(2026, 9, 25)
    assert calendar.working_days_between(start, calendar.add_working_days(start, 15)) == 15
    assert calendar.working_days_between(start, start) == 0
    assert calendar.add_working_days(start, 0) == start
    with pytest.raises(ValueError, match="forwards"):
        calendar.add_working_days(start, -1)
