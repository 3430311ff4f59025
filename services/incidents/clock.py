"""The service's sense of time, injectable so tests move it instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kit.clock import SYSTEM_CLOCK

#: What the service reads the time from: a callable, so a test passes its own (or a MovableClock's ``now``).
Clock = Callable[[], datetime]

#: The suite's one wall clock (kit.clock).
system_clock: Clock = SYSTEM_CLOCK.now
