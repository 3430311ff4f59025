"""What the model sees of one transaction: the contract between scoring and learning.

Scoring fills a :class:`FeatureInput` from the baselines kept in PostgreSQL; training
fills the same object from history replayed in memory. Both then call :func:`vector`,
so a model is trained on exactly the numbers it is later asked about.

Everything is in event time, so a replay of history gives the features the live
service gave:

- a window of length ``w`` is ``[occurred_at - w, occurred_at)``: the transaction
  itself and anything that happens after it are excluded, whatever order the
  events arrived in;
- a fraud label counts only once it was known (``labelled_at <= occurred_at``);
- "new" payee / device / region: no earlier transaction of the customer
  (by ``occurred_at``) had it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

CUSTOMER_WINDOWS = ("1h", "1d", "7d", "30d")
PAYEE_WINDOWS = ("1d", "7d", "30d")


@dataclass(frozen=True, slots=True)
class CustomerWindow:
    """The customer's transactions in the window before this one."""

    count: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PayeeWindow:
    """Transactions to the payee in the window, and how many were labelled fraud by then."""

    count: int
    fraud_count: int


@dataclass(frozen=True, slots=True)
class FeatureInput:
    amount_minor: int
    occurred_at: datetime  # UTC, timezone-aware
    kind: str  # transfer | card_payment | cash_withdrawal | crypto_withdrawal | bill_payment | ...
    channel: str
    customer: Mapping[str, CustomerWindow]  # one per CUSTOMER_WINDOWS key
    payee: Mapping[str, PayeeWindow]  # one per PAYEE_WINDOWS key
    seconds_since_last: float | None  # since the customer's previous transaction; None for the first
    new_payee: bool  # the customer never paid this payee before
    new_device: bool  # a device the customer never used before (False when no device was given)
    new_region: bool  # a region the customer never transacted from before (False when none given)
    customer_fraud_count: int  # the customer's transactions labelled fraud, known at occurred_at


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """The model's part of a score: a fraud probability and the features that drove it."""

    probability: float  # 0..1
    top_features: tuple[tuple[str, float], ...]  # (feature name, contribution), largest first


class ModelScorer(Protocol):
    """A loaded, promoted model as scoring uses it (learning provides the implementation)."""

    @property
    def version(self) -> str: ...

    def predict(self, features: FeatureInput) -> ModelVerdict: ...


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One stored or imported transaction with what was learned about it (training input)."""

    transaction_id: str
    customer_id: str
    payee: str
    amount_minor: int
    occurred_at: datetime
    kind: str
    channel: str
    device_id: str | None
    region: str | None
    label: str | None  # "fraud" | "genuine" | None (not labelled)
    labelled_at: datetime | None  # when the label became known
