"""The replay gives each transaction what was known strictly before it, labels only once known."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.learning.features import (
    CUSTOMER_WINDOWS,
    FEATURE_NAMES,
    PAYEE_WINDOWS,
    WINDOW_SECONDS,
    CustomerWindow,
    FeatureInput,
    HistoryEvent,
    PayeeWindow,
    vector,
)
from services.risk.learning.replay import OutOfOrder, replay

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def reference(events: list[HistoryEvent], event: HistoryEvent) -> FeatureInput:
    """Brute force from the definitions in features.py."""
    t = event.occurred_at
    before = [e for e in events if e.occurred_at < t]
    mine = [e for e in before if e.customer_id == event.customer_id]
    to_payee = [e for e in before if e.payee == event.payee]
    customer = {}
    for w in CUSTOMER_WINDOWS:
        inside = [e for e in mine if e.occurred_at >= t - timedelta(seconds=WINDOW_SECONDS[w])]
        customer[w] = CustomerWindow(len(inside), sum(e.amount_minor for e in inside))
    payee = {}
    for w in PAYEE_WINDOWS:
        inside = [e for e in to_payee if e.occurred_at >= t - timedelta(seconds=WINDOW_SECONDS[w])]
        known = [e for e in inside if e.label == "fraud" and e.labelled_at is not None and e.labelled_at <= t]
        payee[w] = PayeeWindow(len(inside), len(known))
    last = max((e.occurred_at for e in mine), default=None)
    return FeatureInput(
        amount_minor=event.amount_minor,
        occurred_at=t,
        kind=event.kind,
        channel=event.channel,
        customer=customer,
        payee=payee,
        seconds_since_last=None if last is None else (t - last).total_seconds(),
        new_payee=all(e.payee != event.payee for e in mine),
        new_device=event.device_id is not None and all(e.device_id != event.device_id for e in mine),
        new_region=event.region is not None and all(e.region != event.region for e in mine),
        customer_fraud_count=sum(
            1 for e in mine if e.label == "fraud" and e.labelled_at is not None and e.labelled_at <= t
        ),
    )


@st.composite
def histories(draw: st.DrawFn) -> list[HistoryEvent]:
    count = draw(st.integers(min_value=0, max_value=40))
    events = []
    for i in range(count):
        # Coarse offsets so that equal times, window edges and label times collide often.
        at = T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 40)) / 2)
        label = draw(st.sampled_from(["fraud", "genuine", None]))
        delay = draw(st.sampled_from([0, 1800, 3600, 86_400, 7 * 86_400, 20 * 86_400]))
        events.append(
            HistoryEvent(
                transaction_id=f"t{i}",
                customer_id=draw(st.sampled_from(["a", "b", "c"])),
                payee=draw(st.sampled_from(["p", "q", "r", "s"])),
                amount_minor=draw(st.integers(min_value=0, max_value=10**9)),
                occurred_at=at,
                kind=draw(st.sampled_from(["transfer", "card_payment", "novel_kind"])),
                channel=draw(st.sampled_from(["web", "mobile", "teller"])),
                device_id=draw(st.sampled_from([None, "d1", "d2"])),
                region=draw(st.sampled_from([None, "CN-BJ", "CN-SH"])),
                label=label,
                labelled_at=None if label is None else at + timedelta(seconds=delay),
            )
        )
    events.sort(key=lambda e: e.occurred_at)
    return events


@settings(max_examples=150, deadline=None)
@given(histories())
def test_replay_matches_the_brute_force_definitions(events: list[HistoryEvent]) -> None:
    replayed = list(replay(events))
    assert [e for e, _ in replayed] == events
    for event, features in replayed:
        assert features == reference(events, event)


@settings(max_examples=50, deadline=None)
@given(histories())
def test_vectors_follow_the_feature_names(events: list[HistoryEvent]) -> None:
    for _, features in replay(events):
        row = vector(features)
        assert len(row) == len(FEATURE_NAMES)
        assert all(isinstance(v, float) for v in row)
        assert not any(math.isinf(v) for v in row)


def event(i: int, at: datetime, **changes: object) -> HistoryEvent:
    values: dict[str, object] = {
        "transaction_id": f"t{i}",
        "customer_id": "c",
        "payee": "p",
        "amount_minor": 1000,
        "occurred_at": at,
        "kind": "transfer",
        "channel": "web",
        "device_id": None,
        "region": None,
        "label": None,
        "labelled_at": None,
    }
    values.update(changes)
    return HistoryEvent(**values)  # type: ignore[arg-type]


def test_a_fraud_counts_only_once_its_label_is_known() -> None:
    fraud = event(0, T0, label="fraud", labelled_at=T0 + timedelta(days=7))
    early = event(1, T0 + timedelta(days=3), customer_id="other")
    late = event(2, T0 + timedelta(days=7), customer_id="other")
    out = {e.transaction_id: f for e, f in replay([fraud, early, late])}
    assert out["t1"].payee["30d"] == PayeeWindow(count=1, fraud_count=0)
    assert out["t2"].payee["30d"] == PayeeWindow(count=2, fraud_count=1)
    assert out["t2"].payee["7d"] == PayeeWindow(count=2, fraud_count=1)  # [t-7d, t) includes its start
    assert out["t2"].payee["1d"] == PayeeWindow(count=0, fraud_count=0)


def test_transactions_at_the_same_time_do_not_see_each_other() -> None:
    a, b = event(0, T0, amount_minor=500), event(1, T0, amount_minor=700)
    out = [f for _, f in replay([a, b])]
    assert all(f.customer["1h"] == CustomerWindow(0, 0) and f.seconds_since_last is None for f in out)
    assert all(f.new_payee for f in out)


def test_a_step_back_in_time_is_refused() -> None:
    with pytest.raises(OutOfOrder):
        list(replay([event(0, T0 + timedelta(seconds=1)), event(1, T0)]))


def test_vector_encodes_time_kind_and_missing_values() -> None:
    saturday_night = datetime(2026, 3, 7, 2, 30, tzinfo=UTC)
    ((_, features),) = replay([event(0, saturday_night, kind="crypto_withdrawal", channel="mobile")])
    row = dict(zip(FEATURE_NAMES, vector(features), strict=True))
    assert row["amount"] == 10.0
    assert (row["hour"], row["night"], row["weekend"]) == (2.0, 1.0, 1.0)
    assert row["kind_crypto_withdrawal"] == 1.0
    assert row["kind_other"] == 0.0
    assert math.isnan(row["seconds_since_last"])
    assert math.isnan(row["customer_avg_amount_30d"])
    assert row["new_payee"] == 1.0
