"""Detection figures, as the Fraud Detection Handbook defines them.

- **Average precision** (area under the precision-recall curve, scikit-learn's
  ``average_precision_score``): the threshold-free measure for rare fraud.
- **Recall at 1% false-positive rate**: the largest share of frauds caught by a
  threshold that flags at most 1% of the genuine transactions (ROC curve).
- **Card precision at 100 per day** (the handbook's ``card_precision_top_k`` with
  ``k=100`` and detected cards removed): each day, each card (customer) is scored by
  its most suspicious transaction; the 100 highest are what analysts can check; the
  share of them with a fraud that day is the day's precision. A card found
  compromised is not counted again on later days. The figure is the mean over days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sklearn.metrics import average_precision_score, roc_curve

CARDS_PER_DAY = 100
FPR_BUDGET = 0.01


@dataclass(frozen=True, slots=True)
class Metrics:
    average_precision: float
    recall_at_1pct_fpr: float
    card_precision_at_100: float
    transactions: int
    frauds: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "average_precision": self.average_precision,
            "recall_at_1pct_fpr": self.recall_at_1pct_fpr,
            "card_precision_at_100": self.card_precision_at_100,
            "transactions": self.transactions,
            "frauds": self.frauds,
        }


class NotEvaluable(ValueError):
    """The evaluation window has no fraud or no genuine transaction: no figure would mean anything."""


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, budget: float = FPR_BUDGET) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= budget].max())


def card_precision_top_k(
    days: Sequence[object], cards: Sequence[str], labels: np.ndarray, scores: np.ndarray, k: int = CARDS_PER_DAY
) -> float:
    """The handbook's card precision top-k (compromised cards already detected removed)."""
    by_day: dict[object, dict[str, tuple[float, bool]]] = {}
    for day, card, label, score in zip(days, cards, labels.tolist(), scores.tolist(), strict=True):
        cards_of_day = by_day.setdefault(day, {})
        best, fraud = cards_of_day.get(card, (-np.inf, False))
        cards_of_day[card] = (max(best, score), fraud or bool(label))
    detected: set[str] = set()
    precisions: list[float] = []
    for day in sorted(by_day):  # type: ignore[type-var]
        candidates = [(score, card, fraud) for card, (score, fraud) in by_day[day].items() if card not in detected]
        candidates.sort(key=lambda c: -c[0])
        found = [card for _, card, fraud in candidates[:k] if fraud]
        precisions.append(len(found) / k)
        detected.update(found)
    return float(np.mean(precisions)) if precisions else 0.0


def evaluate(
    occurred_at: Sequence[datetime],
    cards: Sequence[str],
    labels: Sequence[bool] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
) -> Metrics:
    """All three figures for one evaluation window (days are UTC calendar days)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) != len(s) or len(y) != len(cards) or len(y) != len(occurred_at):
        raise ValueError("occurred_at, cards, labels and scores must have the same length")
    frauds = int(y.sum())
    if frauds == 0 or frauds == len(y):
        raise NotEvaluable(f"{frauds} frauds among {len(y)} transactions")
    return Metrics(
        average_precision=float(average_precision_score(y, s)),
        recall_at_1pct_fpr=recall_at_fpr(y, s),
        card_precision_at_100=card_precision_top_k([at.date() for at in occurred_at], list(cards), y, s),
        transactions=len(y),
        frauds=frauds,
    )
