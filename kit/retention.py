"""Retention periods as settings, never shorter than the law's minimums outside development.

The manual sets minimums (M2.4, M4.3, M7.4): the login log is kept at least
90 days, operation logs at least 6 months, audit records and incident files
at least 5 years. A service declares its periods as settings and checks them
with :func:`check_retention` in a model validator: in development and test a
shorter period is accepted (tests purge on short clocks); in staging and
production the settings refuse to load, so a misconfigured purge job can
never delete what must still be kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.settings import Environment, InsecureSettingsError

#: The minimums, in days.
LOGIN_LOG_MIN_DAYS = 90
OPERATION_LOG_MIN_DAYS = 183  # six months
AUDIT_RECORD_MIN_DAYS = 1827  # five years, leap days included


@dataclass(frozen=True, slots=True)
class RetentionPeriod:
    days: int
    minimum_days: int


class RetentionTooShort(InsecureSettingsError):
    """A retention period below its minimum outside development and test."""


def check_retention(environment: Environment, periods: Mapping[str, RetentionPeriod]) -> None:
    """Raise :class:`RetentionTooShort` naming every period below its minimum (except in development/test)."""
    bad = [name for name, period in periods.items() if period.days < 1]
    if bad:
        raise RetentionTooShort(f"retention periods must be positive: {', '.join(sorted(bad))}")
    if environment.allows_dev_secrets:
        return
    short = [
        f"{name} ({period.days} < {period.minimum_days} days)"
        for name, period in periods.items()
        if period.days < period.minimum_days
    ]
    if short:
        raise RetentionTooShort(f"{environment.value} refuses retention periods below the minimum: {', '.join(short)}")
