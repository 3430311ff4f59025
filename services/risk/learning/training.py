"""Training a model from labelled history, and its evaluation on a later window.

The history is replayed in event time (:mod:`~services.risk.learning.replay`), so each
transaction is described by what the live service knew when it scored it, labels
included only once they were known. Rows of the training window fit LightGBM's
gradient-boosted trees; rows of the (later) test window are scored by the fitted model
and measured with :mod:`~services.risk.learning.evaluation`. A transaction without a
label counts as genuine (what nobody reported as fraud), as in the handbook.

LightGBM was chosen over XGBoost and scikit-learn's HistGradientBoosting on the
detection and single-row latency figures in docs/risk-model.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import lightgbm as lgb
import numpy as np

from services.risk.learning.evaluation import Metrics, evaluate
from services.risk.learning.features import FEATURE_NAMES, HistoryEvent, vector
from services.risk.learning.model import MODEL_FORMAT, load_model, sha256_of
from services.risk.learning.replay import replay

DEFAULT_PARAMS: Mapping[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 200,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.5,
    "seed": 7,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}
DEFAULT_ROUNDS = 300


class BadWindows(ValueError):
    """Training and test windows must be non-empty and the test window must not start before training ends."""


@dataclass(frozen=True, slots=True)
class Windows:
    train_from: datetime
    train_to: datetime
    test_from: datetime
    test_to: datetime

    def __post_init__(self) -> None:
        if not (self.train_from < self.train_to <= self.test_from < self.test_to):
            raise BadWindows("need train_from < train_to <= test_from < test_to (evaluation on a later window)")
        for at in (self.train_from, self.train_to, self.test_from, self.test_to):
            if at.tzinfo is None:
                raise BadWindows("window bounds must carry a time zone")


@dataclass(slots=True)
class Dataset:
    """Feature rows of one window, with what evaluation needs to know of each."""

    rows: list[list[float]] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    occurred_at: list[datetime] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)

    def add(self, event: HistoryEvent, row: list[float]) -> None:
        self.rows.append(row)
        self.labels.append(event.label == "fraud")
        self.occurred_at.append(event.occurred_at)
        self.cards.append(event.customer_id)

    def matrix(self) -> np.ndarray:
        return np.asarray(self.rows, dtype=np.float64).reshape(len(self.rows), len(FEATURE_NAMES))

    @property
    def frauds(self) -> int:
        return sum(self.labels)


def datasets(events: Iterable[HistoryEvent], windows: Windows) -> tuple[Dataset, Dataset]:
    """Replay the history (sorted here by ``occurred_at``) and keep the rows of each window.

    Everything before ``train_from`` still feeds the baselines; nothing after ``test_to`` is read.
    """
    ordered = sorted(events, key=lambda e: e.occurred_at)
    train, test = Dataset(), Dataset()
    for event, features in replay(e for e in ordered if e.occurred_at < windows.test_to):
        at = event.occurred_at
        if windows.train_from <= at < windows.train_to:
            train.add(event, vector(features))
        elif windows.test_from <= at < windows.test_to:
            test.add(event, vector(features))
    return train, test


def fit(train: Dataset, *, params: Mapping[str, Any] | None = None, rounds: int = DEFAULT_ROUNDS) -> bytes:
    """The LightGBM text model fitted to the rows (refuses a window without both classes)."""
    frauds = train.frauds
    if frauds == 0 or frauds == len(train.labels):
        raise BadWindows(f"the training window needs frauds and genuine transactions ({frauds} of {len(train.labels)})")
    data = lgb.Dataset(
        train.matrix(), label=np.asarray(train.labels, dtype=np.float64), feature_name=list(FEATURE_NAMES)
    )
    booster = lgb.train({**DEFAULT_PARAMS, **(params or {})}, data, num_boost_round=rounds)
    text: str = booster.model_to_string()
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class TrainingResult:
    model: bytes
    sha256: str
    format: str
    metrics: Metrics
    windows: Windows
    train_rows: int
    train_frauds: int
    params: Mapping[str, Any]

    def metrics_dict(self) -> dict[str, float | int]:
        return {**self.metrics.as_dict(), "train_rows": self.train_rows, "train_frauds": self.train_frauds}


def train_and_evaluate(
    events: Iterable[HistoryEvent],
    windows: Windows,
    *,
    params: Mapping[str, Any] | None = None,
    rounds: int = DEFAULT_ROUNDS,
) -> TrainingResult:
    """Fit on the training window, then score the later test window with the model as it will be loaded."""
    train, test = datasets(events, windows)
    model = fit(train, params=params, rounds=rounds)
    digest = sha256_of(model)
    scorer = load_model(model, sha256=digest, version="evaluation")
    scores = scorer.predict_matrix(test.matrix()) if test.rows else np.empty(0)
    metrics = evaluate(test.occurred_at, test.cards, test.labels, scores)
    return TrainingResult(
        model=model,
        sha256=digest,
        format=MODEL_FORMAT,
        metrics=metrics,
        windows=windows,
        train_rows=len(train.rows),
        train_frauds=train.frauds,
        params={**DEFAULT_PARAMS, **(params or {}), "rounds": rounds},
    )
