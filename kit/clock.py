"""The time the services read, so a test can move it instead of sleeping.

Code that decides by the wall clock (a remembered token's expiry, a grant's
expiry) takes a :class:`Clock`; production passes :data:`SYSTEM_CLOCK`, a test
passes a :class:`MovableClock` and moves it past the moment it cares about.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The system's wall clock."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.fromtimestamp(self.time(), UTC)


SYSTEM_CLOCK = Clock()


class MovableClock(Clock):
    """The wall clock plus an offset a test moves forward (real time keeps flowing under it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.offset += seconds
