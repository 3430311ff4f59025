"""Fraud detection on the Fraud Detection Handbook's simulated card transactions.

``python -m bench.bench_risk_detection [--sample 0.2] [--data PATH]`` (``python -m bench risk_detection``
runs it on the whole file, or on ``BENCH_RISK_SAMPLE`` of it when that is set)

Method (docs/risk-model.md): the history of ``../shared/datasets/fdh/`` is replayed in
time order through :mod:`services.risk.learning.replay`, which gives each transaction
the features the live service computes (customer and payee windows, labels counted only
once known). Every label becomes known seven days after its transaction, as analysts
would confirm it. The model is trained on April-June and scores July: each July
transaction is described only by what was known before it, labels of July included as
they arrive. Side by side, in the same run, a scikit-learn random forest on the
handbook's baseline features (customer count and average amount over 1/7/30 days,
terminal count and fraud rate over 1/7/30 days shifted by the seven-day delay, weekend,
night, amount), trained and tested on the same windows. Figures: average precision,
recall at 1% false-positive rate and card precision at 100 per day (handbook
definitions, :mod:`services.risk.learning.evaluation`). Goal of the issue: AP >= 0.80.

``--sample F`` keeps a fraction F of the customers (every payment of each kept customer),
for a quicker run; the figures are then noisier.
"""

from __future__ import annotations

import argparse
import os
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from services.risk.learning.evaluation import Metrics, evaluate
from services.risk.learning.features import HistoryEvent
from services.risk.learning.history import LABEL_DELAY, read_history
from services.risk.learning.model import LightGBMScorer, load_model, sha256_of
from services.risk.learning.replay import replay
from services.risk.learning.training import Dataset, Windows, datasets, fit

_FILE = Path("shared") / "datasets" / "fdh" / "transactions-2018-04-to-07.csv.gz"
#: ``../shared/`` next to the checkout (a worktree sits one level deeper).
DATA = next(
    (p / _FILE for p in Path(__file__).resolve().parents[1].parents if (p / _FILE).exists()),
    Path(__file__).resolve().parents[2] / _FILE,
)
WINDOWS = Windows(
    train_from=datetime(2018, 4, 1, tzinfo=UTC),
    train_to=datetime(2018, 7, 1, tzinfo=UTC),
    test_from=datetime(2018, 7, 1, tzinfo=UTC),
    test_to=datetime(2018, 8, 1, tzinfo=UTC),
)
DAY = 86_400
HANDBOOK_WINDOWS = (1, 7, 30)


def handbook_features(events: Sequence[HistoryEvent]) -> np.ndarray:
    """The handbook's baseline features (chapter 3), vectorised; events in time order.

    Customer windows include the transaction itself (the handbook's rolling windows);
    terminal windows end seven days before it (the label delay), as in the handbook.
    """
    n = len(events)
    t = np.fromiter((int(e.occurred_at.timestamp()) for e in events), dtype=np.int64, count=n)
    amount = np.fromiter((e.amount_minor / 100 for e in events), dtype=np.float64, count=n)
    fraud = np.fromiter((e.label == "fraud" for e in events), dtype=np.float64, count=n)
    _, customer = np.unique([e.customer_id for e in events], return_inverse=True)
    _, terminal = np.unique([e.payee for e in events], return_inverse=True)
    columns: list[np.ndarray] = [amount]
    hours = (t % DAY) // 3600
    weekday = ((t // DAY) + 3) % 7  # 1970-01-01 was a Thursday
    columns += [(weekday >= 5).astype(np.float64), (hours <= 6).astype(np.float64)]

    def windowed(
        group: np.ndarray, values: np.ndarray, lo: np.ndarray, hi: np.ndarray, side: str
    ) -> tuple[np.ndarray, np.ndarray]:
        scale = np.int64(10**10)
        order = np.lexsort((t, group))
        keys = group[order].astype(np.int64) * scale + t[order]
        sums = np.concatenate([[0.0], np.cumsum(values[order])])
        base = group.astype(np.int64) * scale
        a = np.searchsorted(keys, base + lo, side=side)  # type: ignore[call-overload]
        b = np.searchsorted(keys, base + hi, side=side)  # type: ignore[call-overload]
        return (b - a).astype(np.float64), sums[b] - sums[a]

    for w in HANDBOOK_WINDOWS:
        count, total = windowed(customer, amount, t - w * DAY, t, "right")
        columns += [count, np.divide(total, count, out=np.zeros(n), where=count > 0)]
    delay = int(LABEL_DELAY.total_seconds())
    for w in HANDBOOK_WINDOWS:
        count, frauds = windowed(terminal, fraud, t - delay - w * DAY, t - delay, "right")
        columns += [count, np.divide(frauds, count, out=np.zeros(n), where=count > 0)]
    return np.column_stack(columns)


def random_forest(events: Sequence[HistoryEvent], test: Dataset) -> tuple[Metrics, float]:
    started = time.perf_counter()
    features = handbook_features(events)
    at = np.array([e.occurred_at for e in events])
    train_rows = (at >= WINDOWS.train_from) & (at < WINDOWS.train_to)
    test_rows = (at >= WINDOWS.test_from) & (at < WINDOWS.test_to)
    labels = np.array([e.label == "fraud" for e in events])
    forest = RandomForestClassifier(
        n_estimators=100, max_depth=20, max_samples=0.1, n_jobs=2, random_state=0, min_samples_leaf=2
    )
    forest.fit(features[train_rows], labels[train_rows])
    scores = forest.predict_proba(features[test_rows])[:, 1]
    ordered_test = [e for e in events if WINDOWS.test_from <= e.occurred_at < WINDOWS.test_to]
    assert [e.customer_id for e in ordered_test] == test.cards
    return evaluate(test.occurred_at, test.cards, test.labels, scores), time.perf_counter() - started


def single_row_cost(scorer: LightGBMScorer, events: Sequence[HistoryEvent]) -> None:
    """What scoring pays per transaction: ``predict()`` on one FeatureInput (vector, leaves, contributions)."""
    features = [f for _, f in replay(events)]
    for f in features[:500]:
        scorer.predict(f)
    timings = []
    for f in features:
        started = time.perf_counter_ns()
        scorer.predict(f)
        timings.append(time.perf_counter_ns() - started)
    timings.sort()
    p50, p99 = timings[len(timings) // 2] / 1000, timings[int(len(timings) * 0.99)] / 1000
    print(f"single-row predict() with top features: p50 {p50:.0f} us, p99 {p99:.0f} us ({len(timings)} rows)")


def sample(events: list[HistoryEvent], fraction: float) -> list[HistoryEvent]:
    keep = int(fraction * 1000)
    return [e for e in events if zlib.crc32(e.customer_id.encode()) % 1000 < keep]


def line(name: str, m: Metrics, seconds: float) -> str:
    return (
        f"{name:<34} AP {m.average_precision:.3f}   recall@1%FPR {m.recall_at_1pct_fpr:.3f}   "
        f"card precision@100/day {m.card_precision_at_100:.3f}   ({seconds:.0f} s)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench risk_detection")
    default = os.environ.get("BENCH_RISK_SAMPLE")
    parser.add_argument(
        "--sample", type=float, default=float(default) if default else None, help="fraction of customers kept (0-1]"
    )
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv if argv is not None else [])
    started = time.perf_counter()
    events = sorted(read_history(args.data), key=lambda e: e.occurred_at)
    if args.sample:
        events = sample(events, args.sample)
    events = [e for e in events if e.occurred_at < WINDOWS.test_to]
    print(f"{len(events)} transactions read in {time.perf_counter() - started:.0f} s", flush=True)

    started = time.perf_counter()
    train, test = datasets(events, WINDOWS)
    replayed = time.perf_counter() - started
    print(
        f"replayed in event time in {replayed:.0f} s: train {len(train.rows)} ({train.frauds} frauds), "
        f"July {len(test.rows)} ({test.frauds} frauds), labels known 7 days after each transaction",
        flush=True,
    )
    started = time.perf_counter()
    model = fit(train)
    scorer = load_model(model, sha256=sha256_of(model), version="bench")
    ours = evaluate(test.occurred_at, test.cards, test.labels, scorer.predict_matrix(test.matrix()))
    ours_seconds = time.perf_counter() - started
    print(line("LightGBM, service features", ours, ours_seconds), flush=True)

    single_row_cost(scorer, events[-20_000:])

    forest, forest_seconds = random_forest(events, test)
    print(line("random forest, handbook features", forest, forest_seconds), flush=True)
    print(
        f"AP ratio {ours.average_precision / forest.average_precision:.2f}x the random forest; "
        f"goal AP >= 0.80: {'met' if ours.average_precision >= 0.80 else 'NOT met'}"
    )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
