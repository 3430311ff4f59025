"""Working days on the mainland calendar: public holidays AND the adjusted working days (调休).

The calendar comes from the ``holidays`` package (``holidays.China``), which is
actively maintained (monthly releases) and, from version 0.109, carries the
State Council's 2026 schedule: the holidays, their observed days and the
weekend days that are working days (e.g. Saturday 2026-02-14 and 2026-10-10).
``chinese-calendar`` (last release 1.11.0, 2025-11) was the alternative; it
covers 2004-2026 and raises for later years. For 2027 ``holidays`` 0.109
already lists the holidays but no adjusted weekend working days yet (the
schedule is published each November or December): upgrade the package when
it is, and dates computed before that stay as they were stored.

A fix cycle of ``n`` working days from a date ends on the ``n``-th working
day after it (the day of discovery does not count).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


class MainlandCalendar:
    def __init__(self) -> None:
        self._calendar = holidays.country_holidays("CN")

    def is_working_day(self, day: date) -> bool:
        return bool(self._calendar.is_working_day(day))

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself when ``days`` is 0)."""
        if days < 0:
            raise ValueError("working days are counted forwards")
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not after ``start``)."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count


@lru_cache(maxsize=1)
def mainland_calendar() -> MainlandCalendar:
    return MainlandCalendar()
