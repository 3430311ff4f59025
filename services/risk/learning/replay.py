"""Event-time replay of history: the :class:`FeatureInput` the live service gave each transaction.

Events are fed in ``occurred_at`` order. Each transaction is described by what was known
strictly before it (windows ``[t - w, t)``, the customer's earlier payees, devices and
regions) and by the fraud labels known at ``t`` (``labelled_at <= t``), exactly as
:mod:`services.risk.learning.features` defines them. Transactions that share one
``occurred_at`` do not see one another.

Memory is one integer per transaction per customer and per payee; lookups are binary
searches, so a month of a million transactions replays in seconds.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import groupby

from services.risk.learning.features import (
    CUSTOMER_WINDOWS,
    PAYEE_WINDOWS,
    WINDOW_SECONDS,
    CustomerWindow,
    FeatureInput,
    HistoryEvent,
    PayeeWindow,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Exact integer microseconds since the epoch (floats would round window edges)."""
    return (at - _EPOCH) // _MICRO


class OutOfOrder(ValueError):
    """Events must be replayed in ``occurred_at`` order."""


class Replay:
    """Keeps the baselines of everything fed so far; :meth:`run` yields each event's features."""

    def __init__(self) -> None:
        self._customer_times: dict[str, list[int]] = defaultdict(list)
        self._customer_sums: dict[str, list[int]] = defaultdict(lambda: [0])  # prefix sums of amounts
        self._customer_seen: dict[str, tuple[set[str], set[str], set[str]]] = {}
        self._customer_fraud: dict[str, int] = defaultdict(int)
        self._payee_times: dict[str, list[int]] = defaultdict(list)
        self._payee_fraud_times: dict[str, list[int]] = defaultdict(list)  # occurred_at of known frauds
        self._pending: list[tuple[int, int, str, str, int]] = []  # (labelled_at, seq, customer, payee, occurred_at)
        self._seq = 0
        self._now: int | None = None

    def run(self, events: Iterable[HistoryEvent]) -> Iterator[tuple[HistoryEvent, FeatureInput]]:
        """Yield ``(event, features)`` for each event; raise :class:`OutOfOrder` on a step back in time."""
        for t, group in groupby(events, key=lambda e: micros(e.occurred_at)):
            if self._now is not None and t < self._now:
                raise OutOfOrder(f"event at {t} after {self._now}")
            self._now = t
            self._release_labels(t)
            batch = list(group)
            described = [(event, self._describe(event, t)) for event in batch]
            for event in batch:
                self._record(event, t)
            yield from described

    def _release_labels(self, t: int) -> None:
        while self._pending and self._pending[0][0] <= t:
            _, _, customer, payee, occurred = heapq.heappop(self._pending)
            self._customer_fraud[customer] += 1
            insort(self._payee_fraud_times[payee], occurred)

    def _describe(self, event: HistoryEvent, t: int) -> FeatureInput:
        times = self._customer_times.get(event.customer_id, [])
        sums = self._customer_sums.get(event.customer_id, [0])
        end = bisect_left(times, t)
        customer: dict[str, CustomerWindow] = {}
        for w in CUSTOMER_WINDOWS:
            start = bisect_left(times, t - WINDOW_SECONDS[w] * 1_000_000, 0, end)
            customer[w] = CustomerWindow(count=end - start, amount_minor=sums[end] - sums[start])
        payee_times = self._payee_times.get(event.payee, [])
        frauds = self._payee_fraud_times.get(event.payee, [])
        p_end, f_end = bisect_left(payee_times, t), bisect_left(frauds, t)
        payee: dict[str, PayeeWindow] = {}
        for w in PAYEE_WINDOWS:
            since = t - WINDOW_SECONDS[w] * 1_000_000
            payee[w] = PayeeWindow(
                count=p_end - bisect_left(payee_times, since, 0, p_end),
                fraud_count=f_end - bisect_left(frauds, since, 0, f_end),
            )
        seen = self._customer_seen.get(event.customer_id)
        payees, devices, regions = seen if seen is not None else (set(), set(), set())
        return FeatureInput(
            amount_minor=event.amount_minor,
            occurred_at=event.occurred_at,
            kind=event.kind,
            channel=event.channel,
            customer=customer,
            payee=payee,
            seconds_since_last=(t - times[end - 1]) / 1_000_000 if end else None,
            new_payee=event.payee not in payees,
            new_device=event.device_id is not None and event.device_id not in devices,
            new_region=event.region is not None and event.region not in regions,
            customer_fraud_count=self._customer_fraud.get(event.customer_id, 0),
        )

    def _record(self, event: HistoryEvent, t: int) -> None:
        customer = event.customer_id
        self._customer_times[customer].append(t)
        sums = self._customer_sums[customer]
        sums.append(sums[-1] + event.amount_minor)
        payees, devices, regions = self._customer_seen.setdefault(customer, (set(), set(), set()))
        payees.add(event.payee)
        if event.device_id is not None:
            devices.add(event.device_id)
        if event.region is not None:
            regions.add(event.region)
        self._payee_times[event.payee].append(t)
        if event.label == "fraud" and event.labelled_at is not None:
            self._seq += 1
            heapq.heappush(self._pending, (micros(event.labelled_at), self._seq, customer, event.payee, t))


def replay(events: Iterable[HistoryEvent]) -> Iterator[tuple[HistoryEvent, FeatureInput]]:
    """Features of each event of a time-ordered history (a fresh :class:`Replay`)."""
    return Replay().run(events)
