"""Circuit breaker and retry budget, one of each per upstream."""

from __future__ import annotations

import enum
import time

from prometheus_client import Counter, Gauge

from kit.errors import ServiceUnavailable

CIRCUIT_STATE = Gauge("gateway_circuit_state", "Circuit of an upstream: 0 closed, 1 half-open, 2 open.", ["upstream"])
CIRCUIT_TRANSITIONS = Counter("gateway_circuit_transitions_total", "Circuit state changes.", ["upstream", "state"])


class CircuitOpen(ServiceUnavailable):
    code = "circuit_open"
    title = "The service behind this route is failing; retry later"


class State(enum.IntEnum):
    closed = 0
    half_open = 1
    open = 2


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures (connection errors, timeouts).

    Open: every call fails fast with :class:`CircuitOpen` for ``open_seconds``.
    Then half-open: up to ``probes`` calls go through; a success closes the
    circuit, a failure opens it again for another ``open_seconds``.
    """

    def __init__(self, name: str, *, threshold: int, open_seconds: float, probes: int = 1) -> None:
        self.name = name
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.probes = probes
        self.state = State.closed
        self._failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        CIRCUIT_STATE.labels(name).set(0)

    def _move(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            CIRCUIT_STATE.labels(self.name).set(int(state))
            CIRCUIT_TRANSITIONS.labels(self.name, state.name).inc()

    def before(self) -> bool:
        """Admit a call or raise :class:`CircuitOpen`; returns True when the call is a half-open probe."""
        if self.state is State.closed:
            return False
        if self.state is State.open:
            wait = self._opened_at + self.open_seconds - time.monotonic()
            if wait > 0:
                retry = max(1, int(wait + 0.999))
                raise CircuitOpen(
                    f"{self.name} is failing; the gateway stopped calling it for a moment",
                    headers={"Retry-After": str(retry)},
                    upstream=self.name,
                )
            self._move(State.half_open)
            self._probes_in_flight = 0
        if self._probes_in_flight >= self.probes:
            raise CircuitOpen(
                f"{self.name} is being probed after failures", headers={"Retry-After": "1"}, upstream=self.name
            )
        self._probes_in_flight += 1
        return True

    def after(self, probe: bool, ok: bool) -> None:
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if self.state is State.half_open:
                if ok:
                    self._failures = 0
                    self._move(State.closed)
                else:
                    self._open()
            return
        if ok:
            self._failures = 0
            return
        self._failures += 1
        if self.state is State.closed and self._failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = time.monotonic()
        self._move(State.open)


class RetryBudget:
    """Retries allowed as a share of requests (token bucket), plus a small steady allowance.

    Under a broad outage this caps the extra load retries add to ``ratio``
    (20% by default) instead of multiplying it by the attempt count.
    """

    def __init__(self, ratio: float, min_per_second: float) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.capacity = max(10.0, min_per_second * 10)
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def deposit(self) -> None:
        self._tokens = min(self.capacity, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.min_per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
